/**
 * Downstream `user-assertion` (docs/architecture.md §5): an HTTP upstream behind the gateway
 * receives, on every request, a short-lived JWT about the user signed by the
 * gateway — sub = the user, aud = the upstream — and never the agent's API
 * key or the user's own token. A real gateway, a real IdP, and a canary MCP
 * upstream (official SDK) that records the headers of the very HTTP request
 * that carried each tool call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { parseConfig } from '../src/config/load.js';
import { UserAssertionDownstreamSchema } from '../src/config/schema-upstreams.js';
import type { CredentialRequest } from '../src/delegation/types.js';
import { UserAssertionStrategy } from '../src/delegation/user-assertion.js';
import type { Principal } from '../src/identity/principal.js';
import { startCanaryUpstream, type CanaryUpstream, type Headers } from './helpers/canary-upstream.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson, rpcError, rpcResult, toolCall } from './helpers/raw-http.js';
import { TestSigner } from './helpers/test-signer.js';
import { tempDir } from './helpers/tmp.js';

const POLICY = [
  {
    id: 'echo-for-users',
    effect: 'allow',
    upstreams: ['up'],
    tools: ['echo', 'slow_echo'],
    when: 'user.authenticated',
  },
  {
    id: 'own-customers',
    effect: 'allow',
    upstreams: ['up'],
    tools: ['get_customer'],
    when: 'args.customer_id in user.claims.customers',
  },
];

function bearer(h: Headers): string | undefined {
  const v = h.authorization;
  assert.ok(v === undefined || typeof v === 'string', 'one authorization header');
  const m = /^Bearer (.+)$/.exec(v ?? '');
  return m?.[1];
}

function allHeaderText(h: Headers): string {
  return Object.entries(h)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : (v ?? '')}`)
    .join('\n');
}

describe("user-assertion: the upstream receives a gateway-signed assertion about the user, and nothing of the caller's", () => {
  let canary: CanaryUpstream;
  let signer: TestSigner;
  let fx: Fixture;
  let url: string;
  const tokens: Record<string, string> = {};
  const sessions: Record<string, string> = {};
  const headers = (user: string) => ({ 'x-api-key': fx.apiKey, authorization: `Bearer ${tokens[user]}` });

  async function verifyAssertion(token: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, createLocalJWKSet(signer.jwks() as never), {
      issuer: signer.issuer,
      audience: canary.url,
      algorithms: ['ES256'],
    });
    return payload;
  }

  /** The assertion the upstream received with the tool call whose echo text is `text`. */
  function assertionOfCall(text: string): string {
    const calls = canary.calls.filter((c) => c.args.text === text);
    assert.equal(calls.length, 1, `one upstream call for ${text}`);
    const token = bearer(calls[0]!.headers);
    assert.ok(token, `the call ${text} carried a bearer assertion`);
    return token;
  }

  before(async () => {
    canary = await startCanaryUpstream();
    signer = await TestSigner.create();
    fx = await startFixture({
      upstreams: {
        up: {
          transport: 'streamable-http',
          url: canary.url,
          downstream: { strategy: 'user-assertion', claims: ['role', 'customers'] },
        },
      },
      policy: POLICY,
      gateway: { signer },
    });
    url = fx.gateway.urlFor('up');
    for (const u of ['alice', 'bob']) {
      tokens[u] = await fx.userToken(u, { upstream: 'up' });
      sessions[u] = await openSession(url, headers(u));
    }
  });
  after(async () => {
    await fx?.close();
    await canary?.close();
  });

  it("alice's call carries a JWT that verifies against the signer's JWKS: sub alice, user_iss the IdP, aud the upstream, client_id the agent", async () => {
    rpcResult(await postJson(url, headers('alice'), toolCall('echo', { text: 'alice-first' }), sessions.alice));
    const token = assertionOfCall('alice-first');
    const p = await verifyAssertion(token);
    assert.equal(p.sub, 'alice');
    assert.equal(p.user_iss, fx.idp.issuer);
    assert.equal(p.aud, canary.url);
    assert.equal(p.iss, signer.issuer);
    assert.equal(p.client_id, 'agent');
    assert.equal(p.role, 'rep');
    assert.deepEqual(p.customers, ['c-100', 'c-101', 'c-102', 'c-103', 'c-104']);
    assert.equal(p.exp! - p.iat!, 60, 'lifetimeSeconds (default 60)');
    assert.equal(typeof p.jti, 'string');
    // Controls: the same check refuses a key set without the signer's key, and another audience.
    const other = await TestSigner.create();
    await assert.rejects(jwtVerify(token, createLocalJWKSet(other.jwks() as never)));
    await assert.rejects(
      jwtVerify(token, createLocalJWKSet(signer.jwks() as never), { audience: url }),
      'aud is the upstream, not the gateway',
    );
    // The audit trail names the assertion by id, never the assertion.
    const outcome = (await fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 1 }))[0]!;
    assert.equal(outcome.downstreamStrategy, 'user-assertion');
    assert.equal(outcome.downstreamCredentialId, `ua:${p.jti}`);
  });

  it("the session's own traffic (initialize, notifications) carries the assertion of the session's user", async () => {
    const init = canary.requests.filter((r) => r.body.includes('"initialize"'));
    assert.ok(init.length >= 2, 'both sessions initialized the upstream');
    const subs = await Promise.all(init.map(async (r) => (await verifyAssertion(bearer(r.headers)!)).sub));
    assert.deepEqual([...new Set(subs)].sort(), ['alice', 'bob']);
  });

  it("bob's calls carry bob's assertion; one user's assertion is reused for her next calls, never for another user or agent", async () => {
    rpcResult(await postJson(url, headers('bob'), toolCall('echo', { text: 'bob-1' }), sessions.bob));
    rpcResult(await postJson(url, headers('bob'), toolCall('echo', { text: 'bob-2' }), sessions.bob));
    rpcResult(await postJson(url, headers('alice'), toolCall('echo', { text: 'alice-2' }), sessions.alice));
    const [b1, b2, a2] = [assertionOfCall('bob-1'), assertionOfCall('bob-2'), assertionOfCall('alice-2')];
    assert.equal((await verifyAssertion(b1)).sub, 'bob');
    assert.equal(b1, b2, 'cached for bob until shortly before it expires');
    assert.notEqual(a2, b1);
    assert.equal((await verifyAssertion(a2)).sub, 'alice');

    // alice through another agent: the assertion names that agent, so it is not alice's cached one.
    const otherToken = await fx.userToken('alice', {
      upstream: 'up',
      client: { clientId: 'other-agent', clientSecret: 'other-agent-secret-for-tests' },
    });
    const otherHeaders = { 'x-api-key': fx.otherApiKey, authorization: `Bearer ${otherToken}` };
    const otherSession = await openSession(url, otherHeaders);
    rpcResult(await postJson(url, otherHeaders, toolCall('echo', { text: 'alice-via-other' }), otherSession));
    const viaOther = assertionOfCall('alice-via-other');
    assert.notEqual(viaOther, a2);
    const p = await verifyAssertion(viaOther);
    assert.equal(p.sub, 'alice');
    assert.equal(p.client_id, 'other-agent');
  });

  it('a denied call reaches the upstream with nothing; an allowed one of the same tool does (positive control)', async () => {
    const before = canary.calls.length;
    assert.equal(
      rpcError(
        await postJson(url, headers('alice'), toolCall('get_customer', { customer_id: 'c-200' }), sessions.alice),
      ).code,
      -32003,
    );
    assert.equal(canary.calls.length, before);
    rpcResult(
      await postJson(url, headers('alice'), toolCall('get_customer', { customer_id: 'c-100' }), sessions.alice),
    );
    const call = canary.calls.at(-1)!;
    assert.equal(call.tool, 'get_customer');
    assert.equal((await verifyAssertion(bearer(call.headers)!)).sub, 'alice');
  });

  it("under 64 concurrent interleaved calls from alice and bob (over the gateway's shared upstream connections), no request carries the other user's assertion", async () => {
    const N = 32;
    const jobs: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      for (const user of ['alice', 'bob']) {
        const text = `${user}-concurrent-${i}`;
        jobs.push(
          postJson(url, headers(user), toolCall('slow_echo', { text, ms: (i * 7) % 25 }), sessions[user]).then((r) => {
            const result = rpcResult(r) as { content: Array<{ text: string }> };
            assert.equal(result.content[0]!.text, text, 'each caller gets its own answer');
          }),
        );
      }
    }
    await Promise.all(jobs);
    const seen = { alice: 0, bob: 0 };
    for (const call of canary.calls.filter((c) => String(c.args.text).includes('-concurrent-'))) {
      const owner = String(call.args.text).split('-')[0] as 'alice' | 'bob';
      const p = await verifyAssertion(bearer(call.headers)!);
      assert.equal(p.sub, owner, "the assertion is the caller's");
      seen[owner]++;
    }
    assert.deepEqual(
      seen,
      { alice: N, bob: N },
      'positive control: every call arrived, with an assertion, for both users',
    );
  });

  it("no request to the upstream carries the agent's API key or a user's own token, in any header or body", () => {
    assert.ok(canary.requests.length > 10);
    for (const r of canary.requests) {
      const text = `${allHeaderText(r.headers)}\n${r.body}`;
      assert.ok(!text.includes(fx.apiKey) && !text.includes(fx.otherApiKey), 'an API key reached the upstream');
      for (const t of Object.values(tokens)) assert.ok(!text.includes(t), 'a user token reached the upstream');
      assert.equal(r.headers['x-api-key'], undefined);
    }
    // Positive control: the same scan finds what is there.
    assert.ok(canary.requests.some((r) => allHeaderText(r.headers).includes('authorization: Bearer ')));
  });
});

describe('UserAssertionStrategy on its own', () => {
  const cfg = UserAssertionDownstreamSchema.parse({ strategy: 'user-assertion', claims: ['role'] });
  const principal = (sub: string, client = 'agent', claims: Record<string, unknown> = { role: 'rep' }): Principal => ({
    client: { id: client, method: 'api-key', credentialId: 'k' },
    user: { issuer: 'https://idp.test', subject: sub, claims, scopes: [], expiresAt: 2e9, tokenFingerprint: 'f' },
  });
  const req = (p: Principal): CredentialRequest => ({ principal: p, upstream: 'up' });

  it('reuses an assertion until shortly before it expires, then signs a new one', async () => {
    let now = 1_000_000;
    const signer = await TestSigner.create('https://gateway.test', () => now);
    const s = new UserAssertionStrategy(cfg, 'https://up.test/mcp', signer, { now: () => now });
    const first = await s.credentialFor(req(principal('alice')));
    now += 40;
    assert.deepEqual(await s.credentialFor(req(principal('alice'))), first);
    assert.equal(signer.signed, 1);
    now += 10; // 50 s into a 60 s assertion: past the renewal point
    const renewed = await s.credentialFor(req(principal('alice')));
    assert.notDeepEqual(renewed, first);
    assert.equal(signer.signed, 2);
    assert.equal(renewed!.expiresAt, now + 60);
    assert.match(renewed!.id, /^ua:/);
  });

  it("keys the cache by client, user and claims: never one user's assertion for another", async () => {
    const signer = await TestSigner.create();
    const s = new UserAssertionStrategy(cfg, 'https://up.test/mcp', signer);
    const [a, b, a2, aOther, aManager] = await Promise.all([
      s.credentialFor(req(principal('alice'))),
      s.credentialFor(req(principal('bob'))),
      s.credentialFor(req(principal('alice'))),
      s.credentialFor(req(principal('alice', 'other-agent'))),
      s.credentialFor(req(principal('alice', 'agent', { role: 'manager' }))),
    ]);
    assert.equal(
      a!.headers.authorization,
      a2!.headers.authorization,
      'concurrent requests for one user share one signature',
    );
    for (const x of [b, aOther, aManager]) assert.notEqual(x!.headers.authorization, a!.headers.authorization);
    assert.equal(signer.signed, 4);
  });

  it('no user, no assertion; a custom header carries the bare token; reserved claims cannot be configured', async () => {
    const signer = await TestSigner.create();
    const s = new UserAssertionStrategy(
      UserAssertionDownstreamSchema.parse({ strategy: 'user-assertion', header: 'X-User-Assertion' }),
      'aud',
      signer,
    );
    assert.equal(
      await s.credentialFor({
        principal: { client: { id: 'agent', method: 'api-key', credentialId: 'k' } },
        upstream: 'up',
      }),
      undefined,
    );
    const c = await s.credentialFor(req(principal('alice')));
    assert.deepEqual(Object.keys(c!.headers), ['x-user-assertion']);
    assert.match(c!.headers['x-user-assertion']!, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    for (const claim of ['sub', 'iss', 'aud', 'user_iss', 'client_id']) {
      assert.equal(
        UserAssertionDownstreamSchema.safeParse({ strategy: 'user-assertion', claims: [claim] }).success,
        false,
        claim,
      );
    }
  });

  it('a gateway without a signer refuses to start with a user-assertion upstream; a stdio one needs an audience', async () => {
    const raw = (upstream: Record<string, unknown>) => ({
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', apiKeys: [{ id: 'k', hash: `sha256:${'0'.repeat(64)}` }] }],
      userAuth: { issuers: [{ issuer: 'https://idp.test' }] },
      upstreams: { up: upstream },
      audit: { sqlitePath: ':memory:' },
    });
    const http = parseConfig(
      raw({ transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', downstream: { strategy: 'user-assertion' } }),
      tempDir(),
    );
    const { startGateway } = await import('../src/gateway/server.js');
    await assert.rejects(
      startGateway(
        { ...http, config: { ...http.config, server: { ...http.config.server, port: 0 } } },
        { log: () => {} },
      ),
      /user-assertion is not available/,
    );
    const stdio = parseConfig(
      raw({ transport: 'stdio', command: process.execPath, downstream: { strategy: 'user-assertion' } }),
      tempDir(),
    );
    assert.throws(
      () =>
        UserAssertionStrategy.audienceFor(
          'up',
          stdio.config.upstreams.up!.downstream as never,
          stdio.config.upstreams.up!,
        ),
      /needs downstream.audience/,
    );
  });
});
