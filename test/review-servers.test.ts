/**
 * The servers `behalf review` is tested against must behave as described,
 * or the review's tests prove nothing. Each boundary aspect is probed
 * directly (raw HTTP and the SDK client, never the review) on all eight
 * servers: it must be broken on exactly the servers whose flaw is that
 * aspect, and sound everywhere else — the secure server being the negative
 * control of every flaw, and every flawed server the control of the others.
 * Each probe also runs its positive control (the rightful request works).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { parseCommandOutput } from '../src/review/credentials.js';
import { loadProfile, profileSchema } from '../src/review/profile.js';
import { claimsOf, nowSeconds, signWith, unsigned } from './helpers/auth-tokens.js';
import { connectStreamable } from './helpers/clients.js';
import { INITIALIZE, openSession, postJson, rawRequest, rawStream, rpc, type RawResponse } from './helpers/raw-http.js';
import {
  CRM_SERVER_CLIENT,
  FLAWS,
  fingerprintOf,
  MISMATCH_USER,
  REVIEW_AGENT,
  REVIEW_TOOLS,
  reviewProfileFor,
  SHORT_TTL_SECONDS,
  startReviewEnv,
  startReviewServer,
  writeReviewProfile,
  type Flaw,
  type ReviewEnv,
  type ReviewServer,
  type ReviewTool,
} from './helpers/review-servers.js';

type Aspect =
  | 'client-only'
  | 'alg-none'
  | 'audience'
  | 'cross-user'
  | 'sessions'
  | 'lists'
  | 'downstream'
  | 'stream'
  | 'revocation';

/** What each server gets wrong; everything else it must get right. */
const BROKEN: Record<Flaw, readonly Aspect[]> = {
  secure: [],
  'service-account-only': ['client-only', 'cross-user', 'downstream'],
  'alg-none': ['alg-none'],
  'any-audience': ['audience'],
  'unbound-sessions': ['sessions'],
  'list-mismatch': ['lists'],
  'token-passthrough': ['downstream'],
  'stream-outlives-token': ['stream'],
  'ignores-revocation': ['revocation'],
};

const ACCEPT = { accept: 'application/json, text/event-stream' };
const auth = (token: string) => ({ ...ACCEPT, authorization: `Bearer ${token}` });
/** How late after exp a stream may end: timer latency on a loaded machine. */
const LATE_MS = 1500;
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const OWN: Record<string, string> = { alice: 'c-100', bob: 'c-200' };

function run(command: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', ['-c', command], (err, out) => (err ? reject(err) : resolve(out))),
  );
}

describe('review servers', () => {
  let env: ReviewEnv;
  const servers = {} as Record<Flaw, ReviewServer>;
  const clients: Client[] = [];

  before(async () => {
    env = await startReviewEnv();
    for (const flaw of FLAWS) servers[flaw] = await startReviewServer(flaw, env);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(Object.values(servers).map((s) => s.close()));
    await env?.close();
  });

  const token = (user: string, s: ReviewServer) => env.userToken(user, s.url);
  const init = (s: ReviewServer, headers: Record<string, string>): Promise<RawResponse> =>
    postJson(s.url, { ...ACCEPT, ...headers }, INITIALIZE);
  async function connect(s: ReviewServer, t: string): Promise<Client> {
    const c = await connectStreamable(s.url, { authorization: `Bearer ${t}` });
    clients.push(c);
    return c;
  }
  /** Refusals are isError results saying "forbidden"; anything else unexpected fails the test. */
  async function outcome(
    c: Client,
    tool: ReviewTool,
    args: Record<string, unknown> = {},
  ): Promise<'allowed' | 'denied'> {
    const r = await c.callTool({ name: tool, arguments: args });
    if (!r.isError) return 'allowed';
    const text = (r.content as Array<{ text?: string }>)[0]?.text ?? '';
    assert.match(text, /^forbidden/, `${tool}: unexpected error ${text}`);
    return 'denied';
  }
  async function assertInitializes(s: ReviewServer, t: string, why: string): Promise<void> {
    const r = await init(s, auth(t));
    assert.equal(r.status, 200, `${s.flaw}: positive control (${why}) failed: ${r.status} ${r.text}`);
  }

  /** Each probe returns whether the aspect is sound on that server, after asserting its positive control. */
  const PROBES: Record<Aspect, (s: ReviewServer) => Promise<boolean>> = {
    async 'client-only'(s) {
      await assertInitializes(s, await token('alice', s), 'a user token');
      const cc = await env.clientToken(s.url);
      const r = await init(s, auth(cc));
      if (r.status === 401) {
        assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
        return true;
      }
      assert.equal(r.status, 200, r.text);
      // Not only a handshake: the bare client reads a rep's customer.
      assert.equal(await outcome(await connect(s, cc), 'get_customer', { customer_id: 'c-100' }), 'allowed');
      return false;
    },
    async 'alg-none'(s) {
      const real = await token('alice', s);
      await assertInitializes(s, real, 'the signed original');
      const r = await init(s, auth(unsigned({ typ: 'at+jwt' }, claimsOf(real))));
      if (r.status === 200) return false;
      assert.equal(r.status, 401, r.text);
      return true;
    },
    async audience(s) {
      await assertInitializes(s, await token('alice', s), 'a token for this resource');
      const r = await init(s, auth(await env.userToken('alice', `${s.origin}/other/mcp`)));
      if (r.status === 200) return false;
      assert.equal(r.status, 401, r.text);
      return true;
    },
    async 'cross-user'(s) {
      const alice = await connect(s, await token('alice', s));
      const bob = await connect(s, await token('bob', s));
      assert.equal(
        await outcome(alice, 'get_customer', { customer_id: 'c-100' }),
        'allowed',
        'control: alice reads her own',
      );
      assert.equal(
        await outcome(bob, 'get_customer', { customer_id: 'c-200' }),
        'allowed',
        'control: the owner reads c-200',
      );
      const aliceOnBobs = await outcome(alice, 'get_customer', { customer_id: 'c-200' });
      const bobOnAlices = await outcome(bob, 'get_customer', { customer_id: 'c-100' });
      assert.equal(aliceOnBobs, bobOnAlices, 'the rule is the same both ways');
      return aliceOnBobs === 'denied';
    },
    async sessions(s) {
      const alice = auth(await token('alice', s));
      const sid = await openSession(s.url, alice);
      const own = await postJson(s.url, alice, rpc('tools/list'), sid);
      assert.equal(own.status, 200, `control: the session's owner lists: ${own.text}`);
      const anonymous = await postJson(s.url, ACCEPT, rpc('tools/list'), sid);
      assert.equal(anonymous.status, 401, 'no credentials on a live session id');
      const other = await postJson(s.url, auth(await token('bob', s)), rpc('tools/list'), sid);
      if (other.status === 200) {
        assert.ok((other.json as { result?: unknown }).result, other.text);
        return false;
      }
      assert.ok([401, 403, 404].includes(other.status), other.text);
      return true;
    },
    async lists(s) {
      let consistent = true;
      for (const user of ['alice', 'bob']) {
        const c = await connect(s, await token(user, s));
        const listed = new Set((await c.listTools()).tools.map((t) => t.name));
        assert.ok(listed.has('whoami'), `${user} is listed something`);
        for (const tool of REVIEW_TOOLS) {
          const o = await outcome(c, tool, tool === 'get_customer' ? { customer_id: OWN[user] } : {});
          if ((o === 'allowed') !== listed.has(tool)) consistent = false;
        }
      }
      return consistent;
    },
    async downstream(s) {
      const entries: Record<string, { fingerprint: string; sub: unknown; bearer: string }> = {};
      for (const user of ['alice', 'bob']) {
        const t = await token(user, s);
        const before = env.observer.seen().length;
        assert.equal(await outcome(await connect(s, t), 'whoami'), 'allowed', `control: ${user} calls whoami`);
        const fresh = env.observer.seen().slice(before);
        assert.equal(fresh.length, 1, `${user}'s call reached the downstream once`);
        entries[user] = { fingerprint: fresh[0]!.fingerprint, sub: fresh[0]!.claims?.sub, bearer: t };
      }
      const { alice, bob } = entries as Record<'alice' | 'bob', { fingerprint: string; sub: unknown; bearer: string }>;
      if (s.flaw === 'token-passthrough')
        assert.equal(alice.fingerprint, fingerprintOf(alice.bearer), 'the client token itself went downstream');
      if (s.flaw === 'service-account-only') {
        assert.equal(alice.fingerprint, bob.fingerprint, 'one credential for both users');
        assert.equal(alice.sub, CRM_SERVER_CLIENT.clientId);
      }
      return (
        alice.sub === 'alice' &&
        bob.sub === 'bob' &&
        alice.fingerprint !== bob.fingerprint &&
        alice.fingerprint !== fingerprintOf(alice.bearer) &&
        bob.fingerprint !== fingerprintOf(bob.bearer)
      );
    },
    async stream(s) {
      const t = await env.shortLivedToken('alice', s.url);
      const { exp } = decodeJwt(t);
      const headers = auth(t);
      const sid = await openSession(s.url, headers);
      const stream = await rawStream(s.url, { authorization: headers.authorization, 'mcp-session-id': sid });
      try {
        assert.equal(stream.status, 200, `control: the short-lived token opens a stream: ${stream.text()}`);
        const endedAt = await Promise.race([stream.ended, sleepUntil(exp! * 1000 + LATE_MS).then(() => undefined)]);
        // After exp whatever the stream did: a request with the dead token is refused.
        await sleepUntil(exp! * 1000 + 50);
        const late = await postJson(s.url, headers, rpc('tools/list'), sid);
        assert.equal(late.status, 401, `POST with an expired token: ${late.text}`);
        assert.match(String(late.headers['www-authenticate']), /error="invalid_token"/);
        if (endedAt === undefined) return false;
        assert.ok(endedAt >= exp! * 1000 - 50, `the stream ended ${exp! * 1000 - endedAt} ms before exp`);
        return true;
      } finally {
        stream.close();
      }
    },
    async revocation(s) {
      const headers = auth(await token('carol', s));
      const sid = await openSession(s.url, headers);
      const stream = await rawStream(s.url, { authorization: headers.authorization, 'mcp-session-id': sid });
      try {
        assert.equal(stream.status, 200, `control: carol opens a stream: ${stream.text()}`);
        assert.equal((await fetch(`${s.origin}/revoke?sub=carol`, { method: 'POST' })).status, 200);
        const ended = await Promise.race([stream.ended, sleepUntil(Date.now() + 1000).then(() => undefined)]);
        const late = await postJson(s.url, headers, rpc('tools/list'), sid);
        return ended !== undefined && late.status === 401;
      } finally {
        stream.close();
      }
    },
  };

  for (const aspect of Object.keys(PROBES) as Aspect[]) {
    const brokenOn = FLAWS.filter((f) => BROKEN[f].includes(aspect));
    it(`${aspect}: broken on ${brokenOn.join(', ')} only`, async () => {
      const probe = PROBES[aspect];
      // Streams take seconds of waiting each: probe them side by side. The rest in turn, so downstream sightings are not mixed.
      const sound =
        aspect === 'stream'
          ? await Promise.all(FLAWS.map((f) => probe(servers[f])))
          : await FLAWS.reduce<Promise<boolean[]>>(
              async (acc, f) => [...(await acc), await probe(servers[f])],
              Promise.resolve([]),
            );
      FLAWS.forEach((f, i) =>
        assert.equal(
          sound[i],
          !BROKEN[f].includes(aspect),
          `${f}: ${aspect} should be ${BROKEN[f].includes(aspect) ? 'broken' : 'sound'}`,
        ),
      );
    });
  }

  it('every server serves RFC 9728 metadata and RFC 6750 challenges', async () => {
    for (const s of Object.values(servers)) {
      const meta = await rawRequest(s.metadataUrl);
      assert.equal(meta.status, 200);
      assert.deepEqual(
        { ...(meta.json as object), bearer_methods_supported: undefined, scopes_supported: undefined },
        {
          resource: s.url,
          authorization_servers: [env.idp.issuer],
          bearer_methods_supported: undefined,
          scopes_supported: undefined,
        },
      );
      const none = await init(s, {});
      assert.equal(none.status, 401);
      const challenge = String(none.headers['www-authenticate']);
      assert.match(challenge, /^Bearer /);
      assert.ok(challenge.includes(`resource_metadata="${s.metadataUrl}"`), challenge);
      assert.doesNotMatch(challenge, /error=/, 'no error code when no token was sent');
      const garbage = await init(s, { authorization: 'Bearer not-a-token' });
      assert.equal(garbage.status, 401);
      assert.match(String(garbage.headers['www-authenticate']), /error="invalid_token"/);
      for (const method of ['GET', 'DELETE']) {
        const r = await rawRequest(s.url, { method, headers: { accept: 'text/event-stream' } });
        assert.equal(r.status, 401, `${s.flaw}: unauthenticated ${method}`);
      }
    }
  });

  it('every server refuses a foreign Origin and a token in the query string', async () => {
    for (const s of Object.values(servers)) {
      const t = await token('alice', s);
      assert.equal((await init(s, auth(t))).status, 200, 'control: no Origin');
      assert.equal((await init(s, { ...auth(t), origin: s.origin })).status, 200, 'control: its own Origin');
      assert.equal((await init(s, { ...auth(t), origin: 'http://evil.invalid' })).status, 403);
      const query = await postJson(`${s.url}?access_token=${encodeURIComponent(t)}`, ACCEPT, INITIALIZE);
      assert.equal(query.status, 401, `${s.flaw}: a token in the query string`);
    }
  });

  it('the secure server lists exactly what each rep may call', async () => {
    const s = servers.secure;
    for (const user of ['alice', 'bob']) {
      const c = await connect(s, await token(user, s));
      assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), [
        'get_customer',
        'list_customers',
        'team_stats',
        'whoami',
      ]);
      assert.equal(await outcome(c, 'export_customers'), 'denied');
      assert.equal(await outcome(c, 'team_stats'), 'allowed');
    }
    const m = await connect(servers['list-mismatch'], await token(MISMATCH_USER, servers['list-mismatch']));
    const listed = (await m.listTools()).tools.map((t) => t.name);
    assert.ok(
      listed.includes('export_customers') && !listed.includes('team_stats'),
      `list-mismatch lists ${listed.join(', ')}`,
    );
    assert.equal(await outcome(m, 'export_customers'), 'denied');
    assert.equal(await outcome(m, 'team_stats'), 'allowed');
  });

  describe('the shared environment', () => {
    it('a client-credentials token names the client, not a user', async () => {
      const c = decodeJwt(await env.clientToken(servers.secure.url));
      assert.equal(c.sub, REVIEW_AGENT.clientId);
      assert.equal(c.client_id, REVIEW_AGENT.clientId);
      assert.equal(c.iss, env.idp.issuer);
    });

    it('short-lived tokens come from the IdP, for the user and resource, living SHORT_TTL_SECONDS', async () => {
      const s = servers.secure;
      const direct = decodeJwt(await env.shortLivedToken('alice', s.url));
      const viaCommand = parseCommandOutput(await run(env.shortLivedCommand('alice', s.url)));
      const bearer = /^Bearer (\S+)$/.exec(viaCommand.authorization ?? '')?.[1];
      assert.ok(bearer, 'the command prints a token');
      const keys = createRemoteJWKSet(new URL(env.idp.jwksUri));
      const { payload: fromCommand } = await jwtVerify(bearer, keys, { issuer: env.idp.issuer, audience: s.url });
      for (const c of [direct, fromCommand]) {
        assert.equal(c.sub, 'alice');
        assert.equal(c.aud, s.url);
        assert.equal(c.exp! - c.iat!, SHORT_TTL_SECONDS);
      }
    });

    it('the signing key file is the IdP key: a token signed with it passes the secure server, a forged claim does not', async () => {
      const jwk = JSON.parse(readFileSync(env.signingKeyFile, 'utf8')) as { kid: string; d?: string };
      assert.ok(jwk.d, 'a private key');
      assert.ok(
        env.idp.publicJwks.keys.some((k) => (k as { kid?: string }).kid === jwk.kid),
        'its kid is published',
      );
      const s = servers.secure;
      const claims = { ...claimsOf(await token('alice', s)), iat: nowSeconds(), exp: nowSeconds() + 60 };
      const header = { alg: 'RS256', kid: jwk.kid, typ: 'at+jwt' };
      await assertInitializes(s, await signWith(jwk, header, claims), 'signed with the key file');
      const expired = await signWith(jwk, header, { ...claims, exp: nowSeconds() - 60 });
      assert.equal((await init(s, auth(expired))).status, 401, 'an expired claim, validly signed');
    });

    it('reviewProfileFor builds a valid profile whose credentials do what they say', async () => {
      const s = servers.secure;
      const raw = await reviewProfileFor(s, env);
      const p = profileSchema.parse(raw);
      const loaded = loadProfile(writeReviewProfile(raw));
      assert.deepEqual(loaded.profile.crossUser, p.crossUser);
      const h = (name: string) => p.identities[name]!.headers!;
      assert.equal((await init(s, { ...ACCEPT, ...h('alice') })).status, 200);
      assert.equal((await init(s, { ...ACCEPT, ...h('bob') })).status, 200);
      assert.equal((await init(s, { ...ACCEPT, ...h(p.clientOnly!) })).status, 401);
      assert.equal((await init(s, { ...ACCEPT, ...p.otherResource!.headers })).status, 401);
      const revoked = /^Bearer (\S+)$/.exec(p.revoked!.headers!.authorization ?? '')?.[1] ?? '';
      assert.equal((await init(s, auth(revoked))).status, 401, 'the revoked (expired) credential');
      // …and expiry is all that is wrong with it: at its issue time it verifies against the IdP's keys.
      const { iat } = decodeJwt(revoked);
      await jwtVerify(revoked, createRemoteJWKSet(new URL(env.idp.jwksUri)), {
        issuer: env.idp.issuer,
        audience: s.url,
        currentDate: new Date((iat! + 1) * 1000),
      });
      const short = parseCommandOutput(await run(p.shortLived!.command!));
      assert.equal((await init(s, { ...ACCEPT, ...short })).status, 200);
      assert.equal(p.issuer.signingKeyFile, env.signingKeyFile);
      assert.equal((await rawRequest(p.downstream!.observer.url)).status, 200);
      const headersVariant = profileSchema.parse(await reviewProfileFor(s, env, { shortLived: 'headers' }));
      assert.equal((await init(s, { ...ACCEPT, ...headersVariant.shortLived!.headers })).status, 200);
    });
  });
});
