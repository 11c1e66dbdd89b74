/**
 * The quickstart is reviewable out of the box: the review profile it writes
 * parses, its commands print headers that behave as the profile says (every
 * refusal next to its positive control), the gateway config file is the one
 * in force, and the CRM observes credentials as fingerprints only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, importJWK, SignJWT, type JWK } from 'jose';
import { loadConfigFile } from '../src/config/load.js';
import { resolveHeaders } from '../src/review/credentials.js';
import { loadProfile, type LoadedProfile } from '../src/review/profile.js';
import { Redactor } from '../src/review/redactor.js';
import type { ObservedCredential } from '../demo/crm/observer.js';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import type { DevSecrets } from '../demo/quickstart/state-files.js';
import { INITIALIZE, openSession, postJson, rpcError, toolCall } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../bin/behalf.js', import.meta.url));
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const bearer = (h: Record<string, string>) => h.authorization!.replace(/^Bearer /, '');

describe('quickstart: reviewable out of the box', () => {
  let qs: Quickstart;
  let file: Quickstart['file'];
  let loaded: LoadedProfile;
  let secrets: DevSecrets;
  const headersOf = (source: { headers?: Record<string, string>; command?: string } | undefined) => {
    assert.ok(source, 'the profile names this credential');
    return resolveHeaders(source, loaded.dir, new Redactor());
  };
  const initialize = (url: string, headers: Record<string, string>) => postJson(url, headers, INITIALIZE);

  before(async () => {
    qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: tempDir(), BEHALF_PORT: '' });
    file = JSON.parse(readFileSync(join(qs.stateDir, 'quickstart.json'), 'utf8')) as Quickstart['file'];
    loaded = loadProfile(file.review.profile);
    secrets = JSON.parse(readFileSync(join(qs.stateDir, 'dev-secrets.json'), 'utf8')) as DevSecrets;
  });
  after(async () => qs?.close());

  it('writes a profile that loadProfile accepts, holding commands and no secret', () => {
    assert.equal(file.review.profile, join(qs.stateDir, 'review-profile.yaml'));
    const p = loaded.profile;
    assert.deepEqual(Object.keys(p.identities).sort(), ['agent', 'alice', 'bob', 'carol']);
    assert.equal(p.clientOnly, 'agent');
    assert.deepEqual(p.safeToCall.sort(), ['get_customer', 'list_customers']);
    assert.deepEqual(
      p.crossUser.map((c) => [c.as, c.call.arguments.customer_id, c.owner]),
      [
        ['alice', 'c-200', 'bob'],
        ['bob', 'c-100', 'alice'],
      ],
    );
    assert.equal(p.issuer.issuer, file.issuer);
    assert.equal(p.issuer.audience, file.gateway);
    assert.equal(p.issuer.signingKeyFile, file.review.idpSigningKeyFile);
    assert.equal(p.downstream?.observer.url, file.review.observer);
    assert.equal(p.downstream?.call.tool, 'get_customer');
    const text = readFileSync(file.review.profile, 'utf8');
    for (const secret of [
      secrets.agent.apiKey,
      secrets.agent.revokedApiKey,
      secrets.agent.clientSecret,
      ...Object.values(secrets.passwords),
    ]) {
      assert.ok(!text.includes(secret), 'no secret in the profile');
    }
    assert.doesNotMatch(text, /eyJ|bhk_/);
    assert.ok(
      file.review.command.includes(`--profile ${file.review.profile}`) &&
        file.review.command.includes(`--config ${file.review.config}`),
    );
    assert.match(file.review.note, /development only/);
  });

  it("each user identity's command prints headers the gateway accepts, for that user; the client-only identity is refused (401)", async () => {
    for (const name of ['alice', 'bob', 'carol']) {
      const h = await headersOf(loaded.profile.identities[name]);
      assert.equal(decodeJwt(bearer(h)).sub, name);
      assert.equal((await initialize(file.gateway, h)).status, 200, name);
    }
    const agent = await headersOf(loaded.profile.identities.agent);
    assert.deepEqual(Object.keys(agent), ['x-api-key']);
    assert.equal(agent['x-api-key'], secrets.agent.apiKey, 'the live key: only the missing user is wrong');
    assert.equal((await initialize(file.gateway, agent)).status, 401);
  });

  it('the revoked API key is refused with 401; the live key with the same user token is accepted', async () => {
    const revoked = await headersOf(loaded.profile.revoked);
    assert.equal(revoked['x-api-key'], secrets.agent.revokedApiKey);
    assert.equal(decodeJwt(bearer(revoked)).sub, 'alice');
    assert.equal((await initialize(file.gateway, revoked)).status, 401);
    assert.equal(
      (await initialize(file.gateway, { ...revoked, 'x-api-key': secrets.agent.apiKey })).status,
      200,
      'positive control',
    );
    const store = JSON.parse(readFileSync(join(qs.stateDir, 'keys.json'), 'utf8')) as {
      keys: Array<{ id: string; status: string; revokedAt?: string }>;
    };
    const entry = store.keys.find((k) => k.id === 'quickstart-agent-revoked');
    assert.equal(entry?.status, 'revoked');
    assert.ok(entry.revokedAt);
    const records = await qs.gateway.runtime.audit.query({ kind: 'key', limit: 50 });
    assert.ok(
      records.some((r) => r.credentialId === 'quickstart-agent-revoked' && r.outcome === 'revoked'),
      'the revocation is on the audit trail',
    );
    assert.ok(records.some((r) => r.credentialId === 'quickstart-agent' && r.outcome === 'created'));
  });

  it('otherResource is a valid token for the files upstream: accepted there, refused (401) on the CRM', async () => {
    const other = await headersOf(loaded.profile.otherResource);
    assert.equal(decodeJwt(bearer(other)).iss, file.issuer);
    assert.equal((await initialize(file.files.gateway, other)).status, 200, 'positive control');
    assert.equal((await initialize(file.gateway, other)).status, 401);
  });

  it('shortLived lives 3 s: accepted at once, refused (401) once expired', async () => {
    const h = await headersOf(loaded.profile.shortLived);
    const { exp, iat } = decodeJwt(bearer(h));
    assert.equal(exp! - iat!, 3);
    assert.equal((await initialize(file.gateway, h)).status, 200, 'positive control');
    await new Promise((r) => setTimeout(r, Math.max(0, exp! * 1000 - Date.now() + 300)));
    assert.equal((await initialize(file.gateway, h)).status, 401);
  });

  it("issuer.signingKeyFile is the dev IdP's private key (0600): a token it signs is accepted, the same token expired is refused", async () => {
    const keyFile = loaded.profile.issuer.signingKeyFile!;
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const jwk = JSON.parse(readFileSync(keyFile, 'utf8')) as JWK;
    assert.ok(jwk.d, 'a private JWK');
    const published = (await (await fetch(loaded.profile.issuer.jwksUri!)).json()) as {
      keys: Array<{ kid: string; d?: string }>;
    };
    assert.deepEqual(
      published.keys.map((k) => k.kid),
      [jwk.kid],
    );
    assert.equal(published.keys[0]!.d, undefined);

    const alice = await headersOf(loaded.profile.identities.alice);
    const claims = decodeJwt(bearer(alice));
    const key = await importJWK(jwk, 'ES256');
    const sign = (exp: number) =>
      new SignJWT({ ...claims, exp, jti: `forged-${exp}` })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ: 'at+jwt' })
        .sign(key);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(
      (await initialize(file.gateway, { ...alice, authorization: `Bearer ${await sign(now + 600)}` })).status,
      200,
      "positive control: the key is the IdP's",
    );
    assert.equal(
      (await initialize(file.gateway, { ...alice, authorization: `Bearer ${await sign(now - 600)}` })).status,
      401,
    );
  });

  it('the gateway runs from the config file it names, which behalf config check accepts, with keys.maxAgeDays', async () => {
    assert.equal(file.gatewayConfig, join(qs.stateDir, 'gateway.yaml'));
    assert.equal(file.review.config, file.gatewayConfig);
    const { stdout } = await promisify(execFile)(process.execPath, [
      BIN,
      'config',
      'check',
      '--config',
      file.gatewayConfig,
    ]);
    assert.match(stdout, /configuration is valid/);
    const { config } = loadConfigFile(file.gatewayConfig);
    assert.equal(config.keys.maxAgeDays, 30);
    assert.equal(config.keys.file, 'keys.json');
    assert.equal(config.server.port, Number(new URL(file.gateway).port));
    assert.deepEqual(
      config.clients.flatMap((c) => c.apiKeys),
      [],
      "the agent's keys are managed in the key store",
    );
    const text = readFileSync(file.gatewayConfig, 'utf8');
    for (const secret of [secrets.agent.apiKey, secrets.agent.clientSecret]) assert.ok(!text.includes(secret));
  });

  it("the CRM observer lists each user's downstream credential as a fingerprint with its claims, never a token", async () => {
    const call = loaded.profile.downstream!.call;
    const seen = async () => {
      const res = await fetch(loaded.profile.downstream!.observer.url);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.doesNotMatch(text, /eyJ|bhk_/, 'no token and no API key in the answer');
      return (JSON.parse(text) as { seen: ObservedCredential[] }).seen;
    };
    for (const name of ['alice', 'carol']) {
      const h = await headersOf(loaded.profile.identities[name]);
      const last = (await seen()).at(-1)?.seq ?? 0;
      const sid = await openSession(file.gateway, h);
      const res = await postJson(file.gateway, h, toolCall(call.tool, call.arguments), sid);
      assert.match(res.text, /"owner\\?":\s?\\?"alice/, `${name} reads c-100`);
      const fresh = (await seen()).filter((e) => e.seq > last);
      assert.ok(fresh.length > 0, `the CRM saw ${name}'s calls`);
      for (const e of fresh) {
        assert.match(e.fingerprint, /^sha256:[0-9a-f]{64}$/);
        assert.notEqual(e.fingerprint, sha(bearer(h)), "not the user's own token");
        assert.notEqual(e.fingerprint, sha(h['x-api-key']!), "not the agent's key");
        assert.equal(e.header, 'authorization');
        assert.equal(e.verified, true);
        assert.equal(e.claims?.sub, name);
        assert.equal(e.claims?.iss, file.issuer);
        assert.deepEqual(e.claims?.act, { sub: 'behalf-gateway' });
      }
    }
    // bob may not read alice's customer: the call stops at the gateway, but opening his session reached the CRM as bob.
    const bob = await headersOf(loaded.profile.identities.bob);
    const last = (await seen()).at(-1)?.seq ?? 0;
    const sid = await openSession(file.gateway, bob);
    assert.equal(rpcError(await postJson(file.gateway, bob, toolCall(call.tool, call.arguments), sid)).code, -32003);
    const fresh = (await seen()).filter((e) => e.seq > last);
    assert.ok(fresh.length > 0 && fresh.every((e) => e.claims?.sub === 'bob' && e.fingerprint !== sha(bearer(bob))));
  });
});
