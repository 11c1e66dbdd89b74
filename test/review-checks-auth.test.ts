import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { generateSigningJwks } from '../demo/idp/index.js';
import { generateApiKey, hashApiKey } from '../src/identity/api-keys.js';
import type { CheckId } from '../src/review/catalog.js';
import { parseChallenges } from '../src/review/challenge.js';
import { sameShape } from '../src/review/checks/bnd-02-client-credential-strength.js';
import { metadataUrls } from '../src/review/checks/bnd-11-discovery-and-challenges.js';
import { profileSchema } from '../src/review/profile.js';
import { runReview, type ReviewRun } from '../src/review/run.js';
import type { EvidencePack } from '../src/review/evidence/schema.js';
import { AGENT, OTHER_AGENT, startFixture, type Fixture } from './helpers/fixture.js';
import { tempDir } from './helpers/tmp.js';

type CheckResult = EvidencePack['checks'][number];

const MINE: CheckId[] = ['BND-01', 'BND-02', 'BND-03', 'BND-04', 'BND-11'];

function check(run: ReviewRun, id: CheckId): CheckResult {
  const c = run.pack.checks.find((x) => x.id === id);
  assert.ok(c, `${id} in the pack`);
  return c;
}

function item(c: CheckResult, probe: RegExp) {
  const found = c.evidence.find((e) => probe.test(e.probe));
  assert.ok(found, `${c.id} has an item matching ${probe}: ${c.evidence.map((e) => e.probe).join(' | ')}`);
  return found;
}

/** Nothing the review wrote carries a credential it used, nor any JWT at all (forged ones included). */
function assertNoSecrets(run: ReviewRun, secrets: string[]): void {
  const text = JSON.stringify(run.pack) + JSON.stringify(run.exchanges);
  for (const s of secrets) assert.ok(!text.includes(s), 'a credential reached the pack or transcript');
  assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, 'a JWT reached the pack or transcript');
  for (const s of run.secrets) assert.ok(!text.includes(s), 'a registered secret reached the pack or transcript');
}

const explain = (c: CheckResult) =>
  JSON.stringify(
    {
      status: c.status,
      finding: c.finding,
      evidence: c.evidence.map((e) => `${e.outcome} ${e.probe}: ${e.observed ?? ''} ${e.detail ?? ''}`),
    },
    null,
    1,
  );

describe('review BND-01/02/03/04/11 against the behalf gateway', () => {
  let fx: Fixture;
  let signing: Record<string, unknown>;
  const apiKey = generateApiKey();
  const expiredKey = generateApiKey();
  const otherApiKey = generateApiKey();
  let target: URL;
  let dir: string;

  before(async () => {
    signing = (await generateSigningJwks()).keys[0] as Record<string, unknown>;
    fx = await startFixture({
      idp: { jwks: { keys: [signing] } },
      // The agent's key, and one that expired (what a revoked or rotated-out key looks like to a caller).
      clients: [
        {
          id: 'agent',
          apiKeys: [
            { id: 'k1', hash: hashApiKey(apiKey) },
            { id: 'old', hash: hashApiKey(expiredKey), notAfter: '2020-01-01T00:00:00Z' },
          ],
          oauthClientIds: [AGENT.clientId],
        },
        {
          id: 'other-agent',
          apiKeys: [{ id: 'k2', hash: hashApiKey(otherApiKey) }],
          oauthClientIds: [OTHER_AGENT.clientId],
        },
      ],
    });
    target = new URL(fx.gateway.urlFor('crm'));
    dir = tempDir('behalf-review-auth-');
  });
  after(async () => {
    await fx?.close();
  });

  const userHeaders = async (user: string) => ({
    'x-api-key': apiKey,
    authorization: `Bearer ${await fx.userToken(user)}`,
  });

  async function fullProfile(o: { signingKeyFile?: boolean } = {}) {
    const alice = await userHeaders('alice');
    const bob = await userHeaders('bob');
    const otherToken = await fx.userToken('alice', { resource: new URL('/mcp/other', target).href });
    const keyFile = join(dir, 'issuer-key.json');
    writeFileSync(keyFile, JSON.stringify(signing));
    const profile = profileSchema.parse({
      identities: { alice: { headers: alice }, bob: { headers: bob }, agentOnly: { headers: { 'x-api-key': apiKey } } },
      clientOnly: 'agentOnly',
      revoked: { headers: { 'x-api-key': expiredKey } },
      issuer: o.signingKeyFile ? { signingKeyFile: keyFile } : {},
      otherResource: { headers: { authorization: `Bearer ${otherToken}` } },
      safeToCall: ['list_customers', 'get_customer'],
      examples: { get_customer: { customer_id: 'c-100' } },
    });
    return {
      profile,
      secrets: [
        apiKey,
        expiredKey,
        otherToken,
        alice.authorization.slice(7),
        bob.authorization.slice(7),
        String(signing.d),
      ],
    };
  }

  it("passes all five with a full profile, claim attacks signed with the issuer's key", async () => {
    const { profile, secrets } = await fullProfile({ signingKeyFile: true });
    const run = await runReview({ target, transport: 'streamable', profile: { profile, dir } }, { only: MINE });
    for (const id of MINE) assert.equal(check(run, id).status, 'pass', `${id}: ${explain(check(run, id))}`);

    const b01 = check(run, 'BND-01');
    assert.equal(item(b01, /positive control/).outcome, 'ok');
    for (const p of [/POST initialize/, /tools\/list without a session/, /GET \(Accept/, /DELETE/]) {
      const i = item(b01, p);
      assert.equal(i.outcome, 'ok');
      assert.match(i.observed ?? '', /^HTTP 401, WWW-Authenticate: Bearer /);
      assert.ok(i.exchanges?.length, 'the item names its exchanges');
    }

    const b02 = check(run, 'BND-02');
    assert.equal(item(b02, /positive control/).outcome, 'ok');
    for (const p of [/garbage bearer/, /wrong x-api-key/, /query string/, /revoked/]) {
      assert.equal(item(b02, p).outcome, 'ok');
      assert.match(item(b02, p).observed ?? '', /^HTTP 401/);
    }
    const queryEx = run.exchanges.find((e) => item(b02, /query string/).exchanges?.includes(e.n));
    assert.match(
      queryEx?.request.url ?? '',
      /access_token=%5Bredacted%5D|access_token=\[redacted\]/,
      'the query token is redacted in the transcript',
    );

    const b03 = check(run, 'BND-03');
    assert.equal(item(b03, /positive control/).outcome, 'ok');
    assert.equal(item(b03, /agentOnly/).outcome, 'ok');
    assert.match(item(b03, /agentOnly/).observed ?? '', /^HTTP 401/);

    const b04 = check(run, 'BND-04');
    assert.equal(item(b04, /positive control: alice/).outcome, 'ok');
    assert.equal(item(b04, /re-signed with issuer.signingKeyFile/).outcome, 'ok');
    for (const p of [
      /alg none/,
      /unknown kid/,
      /bad signature/,
      /expired/,
      /not yet valid/,
      /wrong issuer/,
      /wrong audience/,
      /PEM/,
      /JWK JSON/,
      /another resource/,
    ]) {
      const i = item(b04, p);
      assert.equal(i.outcome, 'ok', `${i.probe}: ${i.observed} ${i.detail}`);
      assert.match(i.observed ?? '', /^HTTP 401, WWW-Authenticate: Bearer error="invalid_token"/);
    }
    for (const p of [/expired/, /wrong issuer/, /wrong audience/])
      assert.match(item(b04, p).detail ?? '', /issuer's own key \(issuer.signingKeyFile\): only the claim is wrong/);
    assert.equal(item(b04, /actor mismatch/).outcome, 'n/a');
    assert.equal(item(b04, /replayed/).outcome, 'n/a');
    assert.ok(run.pack.review.requests < 120, `a few dozen requests per check, not ${run.pack.review.requests}`);

    const b11 = check(run, 'BND-11');
    assert.equal(item(b11, /carries no error code/).outcome, 'ok');
    assert.equal(item(b11, /names the metadata document/).outcome, 'ok');
    assert.equal(item(b11, /resource` names the target/).observed, target.href);
    assert.equal(item(b11, /authorization servers/).observed, fx.idp.issuer);
    assert.equal(item(b11, /resolves to this resource/).outcome, 'ok');
    assert.equal(item(b11, /garbage bearer/).outcome, 'ok');

    assertNoSecrets(run, secrets);
  });

  it('falls back to a reviewer key without issuer.signingKeyFile, and says so', async () => {
    const { profile, secrets } = await fullProfile();
    const run = await runReview({ target, transport: 'streamable', profile: { profile, dir } }, { only: ['BND-04'] });
    const b04 = check(run, 'BND-04');
    assert.equal(b04.status, 'pass', explain(b04));
    assert.ok(!b04.evidence.some((e) => /signingKeyFile/.test(e.probe)), 'no re-signed control without a key file');
    for (const p of [/expired/, /not yet valid/, /wrong issuer/, /wrong audience/]) {
      assert.equal(item(b04, p).outcome, 'ok');
      assert.match(item(b04, p).detail ?? '', /reviewer key: the refusal may be the signature alone/);
    }
    assertNoSecrets(run, secrets);
  });

  it('BND-03 also passes when the client-only identity carries a client-credentials token (the client as its own subject)', async () => {
    const cc = (
      await fx.idp.clientCredentialsToken({
        clientId: AGENT.clientId,
        clientSecret: AGENT.clientSecret,
        resource: target.href,
      })
    ).accessToken;
    const profile = profileSchema.parse({
      identities: {
        alice: { headers: await userHeaders('alice') },
        agent: { headers: { 'x-api-key': apiKey, authorization: `Bearer ${cc}` } },
      },
      clientOnly: 'agent',
    });
    const run = await runReview({ target, transport: 'streamable', profile: { profile, dir } }, { only: ['BND-03'] });
    const b03 = check(run, 'BND-03');
    assert.equal(b03.status, 'pass', explain(b03));
    assert.match(
      item(b03, /agent \(client credential/).observed ?? '',
      /^HTTP 401, WWW-Authenticate: Bearer error="invalid_token"/,
    );
    assertNoSecrets(run, [cc, apiKey]);
  });

  it('passes over the legacy HTTP+SSE transport too (stream GET as the connect probe)', async () => {
    const { profile, secrets } = await fullProfile({ signingKeyFile: true });
    const sse = new URL(`${target.href}/sse`);
    const run = await runReview({ target: sse, transport: 'sse', profile: { profile, dir } }, { only: MINE });
    for (const id of MINE) assert.equal(check(run, id).status, 'pass', `${id}: ${explain(check(run, id))}`);
    const b01 = check(run, 'BND-01');
    assert.equal(item(b01, /GET of the SSE stream/).outcome, 'ok');
    assert.match(item(b01, /legacy message endpoint/).observed ?? '', /^HTTP 401/);
    assert.match(item(check(run, 'BND-04'), /positive control: alice/).observed ?? '', /event stream opened/);
    assert.match(
      item(check(run, 'BND-11'), /resource` names the target/).detail ?? '',
      /legacy SSE endpoint sits below/,
    );
    // The fingerprint is whole on this transport too: a re-assessment keys on the server and the protocol version.
    assert.ok(run.pack.fingerprint.serverInfo?.name);
    assert.equal(run.pack.fingerprint.protocolVersion, '2025-11-25');
    assertNoSecrets(run, secrets);
  });

  it('without a profile: refusals still count, the rest is not-assessed with the profile field to add', async () => {
    const run = await runReview({ target, transport: 'streamable' }, { only: MINE });
    const b01 = check(run, 'BND-01');
    assert.equal(b01.status, 'pass', explain(b01));
    assert.match(item(b01, /positive control/).detail ?? '', /no profile/);
    assert.equal(check(run, 'BND-02').status, 'not-assessed');
    assert.match(check(run, 'BND-03').reason ?? '', /clientOnly/);
    assert.match(check(run, 'BND-04').reason ?? '', /profile/);
    const b11 = check(run, 'BND-11');
    // The challenge and the metadata are judged; the garbage-token challenge cannot be without the client's API key.
    assert.equal(b11.status, 'partial', explain(b11));
    assert.equal(item(b11, /garbage bearer/).outcome, 'not-assessed');
    assert.equal(item(b11, /metadata document/).outcome, 'ok');
  });

  it('without --target every black-box check is not-assessed', async () => {
    const run = await runReview({ transport: 'streamable' }, { only: MINE });
    for (const id of MINE) {
      assert.equal(check(run, id).status, 'not-assessed', id);
      assert.match(check(run, id).reason ?? check(run, id).finding, /no --target given/, id);
    }
    assert.equal(run.pack.review.requests, 0);
  });
});

/** A server that answers every request as if it were allowed: each check must be able to fail. */
function startPermissive(): Promise<{ url: URL; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.method !== 'POST') {
        const stream = req.method === 'GET' && /event-stream/.test(req.headers.accept ?? '');
        res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' }).end();
        return;
      }
      let msg: { id?: unknown; method?: string; params?: { protocolVersion?: string } } = {};
      try {
        msg = JSON.parse(body) as typeof msg;
      } catch {
        // answered anyway
      }
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      const result =
        msg.method === 'initialize'
          ? {
              protocolVersion: msg.params?.protocolVersion ?? '2025-06-18',
              capabilities: { tools: {} },
              serverInfo: { name: 'permissive', version: '0' },
            }
          : msg.method === 'tools/list'
            ? { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] }
            : msg.method === 'tools/call'
              ? { content: [{ type: 'text', text: 'served' }] }
              : {};
      res
        .writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'permissive-session' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: new URL(`http://127.0.0.1:${port}/mcp`),
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    }),
  );
}

describe('review BND-01/02/03/04/11 against a server that serves everyone', () => {
  let srv: Awaited<ReturnType<typeof startPermissive>>;
  before(async () => {
    srv = await startPermissive();
  });
  after(async () => {
    await srv?.close();
  });

  it('fails each check, with the probe that got through', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    // An issuer nobody listens at: the key-confusion part cannot fetch keys and says so.
    const token = await new SignJWT({ client_id: 'agent' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('http://127.0.0.1:9/')
      .setAudience(srv.url.href)
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
    const key = generateApiKey();
    const profile = profileSchema.parse({
      identities: {
        alice: { headers: { 'x-api-key': key, authorization: `Bearer ${token}` } },
        client: { headers: { 'x-api-key': key } },
      },
      clientOnly: 'client',
      safeToCall: ['echo'],
    });
    const run = await runReview(
      { target: srv.url, transport: 'streamable', profile: { profile, dir: tempDir() } },
      { only: MINE },
    );
    for (const id of MINE) assert.equal(check(run, id).status, 'fail', `${id}: ${explain(check(run, id))}`);

    const b01 = check(run, 'BND-01');
    assert.equal(item(b01, /POST initialize/).outcome, 'bad');
    assert.match(item(b01, /POST initialize/).detail ?? '', /accepted: HTTP 200 with a JSON-RPC result/);
    assert.equal(item(b01, /GET \(Accept/).outcome, 'bad');
    assert.match(b01.finding, /unauthenticated request\(s\) were served/);

    const b02 = check(run, 'BND-02');
    assert.equal(item(b02, /garbage bearer/).outcome, 'bad');
    assert.equal(item(b02, /wrong x-api-key/).outcome, 'bad');
    // The server answers without any bearer too, so the query-string probe proves nothing either way.
    assert.equal(item(b02, /query string/).outcome, 'not-assessed');
    assert.equal(item(b02, /revoked/).outcome, 'not-assessed');

    const b03 = check(run, 'BND-03');
    assert.equal(item(b03, /tools\/list/).outcome, 'bad');
    assert.equal(item(b03, /tools\/call echo/).outcome, 'bad');

    const b04 = check(run, 'BND-04');
    for (const p of [/alg none/, /unknown kid/, /bad signature/, /expired/, /wrong audience/])
      assert.equal(item(b04, p).outcome, 'bad', p.source);
    assert.equal(item(b04, /RS\/HS confusion/).outcome, 'not-assessed');
    assert.equal(item(b04, /another resource/).outcome, 'not-assessed');

    const b11 = check(run, 'BND-11');
    assert.equal(item(b11, /metadata document/).outcome, 'bad');
    assert.equal(item(b11, /garbage bearer/).outcome, 'bad');
    assertNoSecrets(run, [key, token]);
  });

  it('a refused request needs no control, but a failed control makes a refusal prove nothing', async () => {
    // The permissive server refuses nothing; a dead port refuses everything, including the control.
    const deadTarget = new URL('http://127.0.0.1:9/mcp');
    const profile = profileSchema.parse({
      identities: { alice: { headers: { 'x-api-key': 'k'.repeat(20), authorization: 'Bearer opaque-token-value' } } },
    });
    const run = await runReview(
      { target: deadTarget, transport: 'streamable', profile: { profile, dir: tempDir() } },
      { only: ['BND-01', 'BND-02'] },
    );
    assert.notEqual(check(run, 'BND-01').status, 'pass');
    assert.notEqual(check(run, 'BND-01').status, 'fail');
    const b02 = check(run, 'BND-02');
    assert.equal(b02.status, 'not-assessed', explain(b02));
    assert.equal(item(b02, /positive control/).outcome, 'not-assessed');
  });
});

describe('review helpers', () => {
  it('parses WWW-Authenticate challenges', () => {
    const [bearer] = parseChallenges(
      'Bearer error="invalid_token", error_description="User token is invalid", scope="mcp:tools crm:read", resource_metadata="http://h/.well-known/oauth-protected-resource/mcp/crm"',
    );
    assert.deepEqual(bearer, {
      scheme: 'bearer',
      params: {
        error: 'invalid_token',
        error_description: 'User token is invalid',
        scope: 'mcp:tools crm:read',
        resource_metadata: 'http://h/.well-known/oauth-protected-resource/mcp/crm',
      },
    });
    const many = parseChallenges('Basic realm="a, b", Bearer realm=x,scope="s" , Negotiate abc==');
    assert.deepEqual(
      many.map((c) => c.scheme),
      ['basic', 'bearer', 'negotiate'],
    );
    assert.equal(many[0]!.params.realm, 'a, b');
    assert.deepEqual(many[1]!.params, { realm: 'x', scope: 's' });
    assert.equal(many[2]!.token68, 'abc==');
    assert.deepEqual(parseChallenges('Bearer'), [{ scheme: 'bearer', params: {} }]);
    assert.deepEqual(parseChallenges('Bearer q="a\\"b"')[0]!.params, { q: 'a"b' });
    assert.deepEqual(parseChallenges(undefined), []);
  });

  it('a wrong key of the same shape keeps the prefix and character classes', () => {
    const key = generateApiKey();
    const wrong = sameShape(key);
    assert.notEqual(wrong, key);
    assert.equal(wrong.length, key.length);
    assert.ok(wrong.startsWith('bhk_'));
    for (let i = 0; i < key.length; i++) {
      const cls = (c: string) => (/[a-z]/.test(c) ? 'l' : /[A-Z]/.test(c) ? 'u' : /[0-9]/.test(c) ? 'd' : c);
      assert.equal(cls(wrong[i]!), cls(key[i]!));
    }
  });

  it('builds RFC 9728 metadata URLs, path form first', () => {
    assert.deepEqual(metadataUrls(new URL('http://h:1/mcp/crm/')), [
      'http://h:1/.well-known/oauth-protected-resource/mcp/crm',
      'http://h:1/.well-known/oauth-protected-resource',
    ]);
    assert.deepEqual(metadataUrls(new URL('https://h/')), ['https://h/.well-known/oauth-protected-resource']);
  });
});
