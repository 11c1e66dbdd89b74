/**
 * Inbound "user context as a verified parameter" (docs/architecture.md §1, third pattern):
 * the agent platform signs a short-lived assertion about the user for one
 * call and puts it in `params._meta["behalf/user"]` (or `x-behalf-user`). The
 * agent still authenticates itself (API key); no user token is needed on a
 * route that opts in (`inbound: [signed-context]`). Each message is decided
 * for the user its assertion proves — after checking the signature (the
 * platform's JWKS), issuer, audience, a short lifetime, single use and the
 * binding to this very call. Every refusal is a JSON-RPC error of that call
 * that says nothing about why, and an audit row that does; the assertion
 * never reaches the upstream.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import { parseConfig } from '../src/config/load.js';
import { SignedContextSchema } from '../src/config/schema-clients.js';
import { GatewayConfigSchema } from '../src/config/schema.js';
import { BehalfError } from '../src/errors.js';
import { callBinding, SignedContextVerifier, takeUserAssertion } from '../src/identity/user-context.js';
import type { JsonRpcMessage } from '../src/jsonrpc.js';
import { MemoryReplayCache } from '../src/state/replay-cache.js';
import { startCanaryUpstream, type CanaryUpstream } from './helpers/canary-upstream.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import {
  assertNoLeak,
  openSession,
  postJson,
  rpc,
  rpcError,
  rpcResult,
  toolCall,
  type RawResponse,
} from './helpers/raw-http.js';
import { TestSigner } from './helpers/test-signer.js';
import { tempDir } from './helpers/tmp.js';

const PLATFORM = 'https://agents.test';
const META_KEY = 'behalf/user';
const INVALID = { code: -32003, message: 'Signed user context is invalid' };
const REQUIRED = { code: -32003, message: 'Signed user context required' };
const DENIED = { code: -32003, message: 'Forbidden: not allowed for this user' };
const OWNS: Record<string, string[]> = {
  alice: ['c-100', 'c-101', 'c-102', 'c-103', 'c-104'],
  bob: ['c-200', 'c-201', 'c-202', 'c-203', 'c-204'],
};

const POLICY = [
  {
    id: 'own-customers',
    effect: 'allow',
    upstreams: ['up', 'tok'],
    tools: ['get_customer'],
    when: 'args.customer_id in user.claims.customers',
  },
  {
    id: 'echo-for-users',
    effect: 'allow',
    upstreams: ['up', 'tok'],
    tools: ['echo', 'slow_echo'],
    when: 'user.authenticated',
  },
];

interface SigningKey {
  kid: string;
  key: CryptoKey;
  jwk: Record<string, unknown>;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

type Msg = { jsonrpc: '2.0'; id?: number; method: string; params?: Record<string, unknown> };

interface AssertionOptions {
  key?: SigningKey;
  audience?: string;
  /** Claims replacing the defaults (undefined removes one). */
  claims?: JWTPayload;
  iat?: number;
  exp?: number;
}

const now = () => Math.floor(Date.now() / 1000);

/** The message with its assertion in `_meta`. */
function withAssertion(msg: Msg, jwt: string, extraMeta: Record<string, unknown> = {}): Msg {
  return { ...msg, params: { ...msg.params, _meta: { ...extraMeta, [META_KEY]: jwt } } };
}

describe('signed user context: the user is proven per message by the agent platform', () => {
  let canary: CanaryUpstream;
  let fx: Fixture;
  let url: string;
  let tokUrl: string;
  let platformKey: SigningKey;
  let strangerKey: SigningKey;
  let impostorKey: SigningKey;
  let signer: TestSigner;
  let agent: Record<string, string>;
  let session: string;
  /** Every assertion made in this suite: none may reach the upstream. */
  const issued: string[] = [];

  /** An assertion by the platform that `user` makes exactly `msg` through this gateway route. */
  async function assertion(user: string, msg: Msg, o: AssertionOptions = {}): Promise<string> {
    const k = o.key ?? platformKey;
    const iat = o.iat ?? now();
    const payload: JWTPayload = {
      sub: user,
      customers: OWNS[user] ?? [],
      client_id: 'agent',
      jti: randomBytes(12).toString('base64url'),
      call: callBinding(msg),
      iss: PLATFORM,
      aud: o.audience ?? url,
      iat,
      exp: o.exp ?? iat + 30,
      ...o.claims,
    };
    const jwt = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: k.kid, typ: 'JWT' }).sign(k.key);
    issued.push(jwt);
    return jwt;
  }

  const post = (body: unknown, headers: Record<string, string> = {}, sid: string | undefined = session) =>
    postJson(url, { ...agent, ...headers }, body, sid);

  /** The newest audit row of a kind. */
  async function lastRow(kind: 'decision' | 'auth-failure') {
    return (await fx.gateway.runtime.audit.query({ kind, limit: 1 }))[0]!;
  }

  /** A refused call: the fixed JSON-RPC error, no details, nothing forwarded, and an audit row with the reason. */
  async function assertRefused(
    r: RawResponse,
    expected: { code: number; message: string },
    reason: string,
    callsBefore: number,
    tokenUser?: string,
  ): Promise<void> {
    assert.equal(r.status, 200);
    assert.deepEqual(rpcError(r), expected);
    assertNoLeak(r.text, issued);
    assert.equal(canary.calls.length, callsBefore, 'nothing reached the upstream');
    const row = await lastRow('auth-failure');
    assert.equal(row.reason, reason);
    assert.equal(row.clientId, 'agent');
    assert.equal(row.userSubject, tokenUser, 'no unverified user is recorded as the user');
    assert.equal(row.decision, 'deny');
    for (const t of issued) assert.ok(!JSON.stringify(row).includes(t), 'an assertion in the audit row');
  }

  before(async () => {
    canary = await startCanaryUpstream();
    platformKey = await signingKey('platform-1');
    impostorKey = await signingKey('platform-1'); // the same kid, another key
    strangerKey = await signingKey('stranger-1');
    signer = await TestSigner.create();
    const jwksPath = join(tempDir(), 'platform.jwks.json');
    writeFileSync(jwksPath, JSON.stringify({ keys: [platformKey.jwk] }));
    fx = await startFixture({
      upstreams: {
        up: {
          transport: 'streamable-http',
          url: canary.url,
          inbound: ['signed-context'],
          downstream: { strategy: 'user-assertion', claims: ['customers'] },
        },
        tok: { transport: 'streamable-http', url: canary.url },
      },
      userAuth: {
        signedContext: { issuer: PLATFORM, jwks: `file:${jwksPath}`, algorithms: ['ES256'], userClaims: ['customers'] },
      },
      policy: POLICY,
      gateway: { signer },
    });
    url = fx.gateway.urlFor('up');
    tokUrl = fx.gateway.urlFor('tok');
    agent = { 'x-api-key': fx.apiKey };
    session = await openSession(url, agent);
  });
  after(async () => {
    await fx?.close();
    await canary?.close();
  });

  it('the agent authenticates with its API key alone; without it, 401; a user token is not taken on this route', async () => {
    const msg = toolCall('echo', { text: 'http-level' }) as Msg;
    const none = await postJson(url, {}, withAssertion(msg, await assertion('alice', msg)), session);
    assert.equal(none.status, 401);
    const withToken = await postJson(
      url,
      { ...agent, authorization: `Bearer ${await fx.userToken('alice', { upstream: 'up' })}` },
      withAssertion(msg, await assertion('alice', msg)),
      session,
    );
    assert.equal(withToken.status, 401);
    // Positive control: the API key and the message's assertion are enough.
    assert.equal(
      (rpcResult(await post(withAssertion(msg, await assertion('alice', msg)))) as { content: Array<{ text: string }> })
        .content[0]!.text,
      'http-level',
    );
  });

  it('a valid assertion: the call is allowed and decided for that user (the policy sees user.sub and her claims)', async () => {
    const msg = toolCall('get_customer', { customer_id: 'c-100' }) as Msg;
    const r = await post(withAssertion(msg, await assertion('alice', msg)));
    assert.equal((rpcResult(r) as { content: Array<{ text: string }> }).content[0]!.text, 'customer c-100');
    const row = await lastRow('decision');
    assert.equal(row.decision, 'allow');
    assert.deepEqual(row.ruleIds, ['own-customers']);
    assert.equal(row.userSubject, 'alice');
    assert.equal(row.userIssuer, PLATFORM);
    assert.equal(row.clientId, 'agent');
    // Downstream, the upstream gets the gateway's assertion about alice (user-assertion), not the platform's.
    const call = canary.calls.at(-1)!;
    const { payload } = await jwtVerify(
      String(call.headers.authorization).slice('Bearer '.length),
      createLocalJWKSet(signer.jwks() as never),
      { audience: canary.url },
    );
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.user_iss, PLATFORM);

    // Same call, same session, bob's assertion: decided for bob, who does not own c-100.
    const before = canary.calls.length;
    const denied = await post(withAssertion(msg, await assertion('bob', msg)));
    assert.deepEqual(rpcError(denied), DENIED);
    assert.equal(canary.calls.length, before);
    const deniedRow = await lastRow('decision');
    assert.equal(deniedRow.userSubject, 'bob');
    assert.equal(deniedRow.decision, 'deny');
  });

  it('replayed: the same assertion twice is refused the second time', async () => {
    const msg = toolCall('get_customer', { customer_id: 'c-101' }) as Msg;
    const body = withAssertion(msg, await assertion('alice', msg));
    rpcResult(await post(body));
    const before = canary.calls.length;
    await assertRefused(await post(body), INVALID, 'user_context_invalid: replayed', before);
    // Also within one batch, and with a fresh JSON-RPC id: the jti, not the message, is single-use.
    const again = await post({ ...body, id: 9_999 });
    await assertRefused(again, INVALID, 'user_context_invalid: replayed', before);
  });

  it('expired: refused; a fresh assertion for the same call passes', async () => {
    const msg = toolCall('get_customer', { customer_id: 'c-102' }) as Msg;
    const before = canary.calls.length;
    await assertRefused(
      await post(withAssertion(msg, await assertion('alice', msg, { iat: now() - 50, exp: now() - 20 }))),
      INVALID,
      'user_context_invalid: expired',
      before,
    );
    rpcResult(await post(withAssertion(msg, await assertion('alice', msg))));
  });

  it('unbound: an assertion made for get_customer(c-100) is refused for c-200, for c-101 and for another tool', async () => {
    const made = toolCall('get_customer', { customer_id: 'c-100' }) as Msg;
    const reason = 'user_context_invalid: not bound to this call';
    for (const used of [
      toolCall('get_customer', { customer_id: 'c-200' }),
      toolCall('get_customer', { customer_id: 'c-101' }), // one alice may read: refused for the binding, not the policy
      toolCall('echo', { customer_id: 'c-100' }),
      toolCall('get_customer', { customer_id: 'c-100', extra: 1 }),
    ] as Msg[]) {
      const before = canary.calls.length;
      await assertRefused(await post(withAssertion(used, await assertion('alice', made))), INVALID, reason, before);
    }
    // Positive control: made for exactly this call, it passes — key order of the arguments does not matter.
    const sameCall = { ...made, params: { arguments: { customer_id: 'c-100' }, name: 'get_customer' } };
    rpcResult(await post(withAssertion(sameCall, await assertion('alice', made))));
  });

  it('wrong key: signed by a key not in the configured JWKS (same kid, or an unknown kid) is refused', async () => {
    const msg = toolCall('get_customer', { customer_id: 'c-103' }) as Msg;
    const before = canary.calls.length;
    await assertRefused(
      await post(withAssertion(msg, await assertion('alice', msg, { key: impostorKey }))),
      INVALID,
      'user_context_invalid: bad signature',
      before,
    );
    await assertRefused(
      await post(withAssertion(msg, await assertion('alice', msg, { key: strangerKey }))),
      INVALID,
      'user_context_invalid: unknown key',
      before,
    );
    rpcResult(await post(withAssertion(msg, await assertion('alice', msg))));
  });

  it('a lifetime above maxAgeSeconds (60) is refused; exactly 60 passes', async () => {
    const msg = toolCall('get_customer', { customer_id: 'c-104' }) as Msg;
    const before = canary.calls.length;
    await assertRefused(
      await post(withAssertion(msg, await assertion('alice', msg, { exp: now() + 61 }))),
      INVALID,
      'user_context_invalid: lifetime above maxAgeSeconds',
      before,
    );
    await assertRefused(
      await post(withAssertion(msg, await assertion('alice', msg, { iat: now() - 70, exp: now() + 5 }))),
      INVALID,
      'user_context_invalid: older than maxAgeSeconds',
      before,
    );
    const iat = now();
    rpcResult(await post(withAssertion(msg, await assertion('alice', msg, { iat, exp: iat + 60 }))));
  });

  it('wrong issuer, wrong audience (another route), another client, missing claims: refused; each against a passing control', async () => {
    const msg = toolCall('echo', { text: 'claims-check' }) as Msg;
    const cases: Array<[AssertionOptions, string]> = [
      [{ claims: { iss: 'https://evil.test' } }, 'user_context_invalid: claim iss check_failed'],
      [{ audience: tokUrl }, 'user_context_invalid: claim aud check_failed'],
      [{ claims: { client_id: 'other-agent' } }, 'user_context_invalid: issued for another client'],
      [{ claims: { client_id: undefined } }, 'user_context_invalid: issued for another client'],
      [{ claims: { call: undefined } }, 'user_context_invalid: claim call missing'],
      [{ claims: { jti: undefined } }, 'user_context_invalid: claim jti missing'],
    ];
    for (const [o, reason] of cases) {
      const before = canary.calls.length;
      await assertRefused(await post(withAssertion(msg, await assertion('alice', msg, o))), INVALID, reason, before);
    }
    rpcResult(await post(withAssertion(msg, await assertion('alice', msg))));
  });

  it("no assertion: a call is refused as needing one (audited); housekeeping passes without; lists are filtered for the assertion's user", async () => {
    const before = canary.calls.length;
    await assertRefused(
      await post(toolCall('echo', { text: 'no-user' })),
      REQUIRED,
      'user_context_required: Signed user context required',
      before,
    );
    await assertRefused(
      await post(rpc('tools/list')),
      REQUIRED,
      'user_context_required: Signed user context required',
      before,
    );
    rpcResult(await post(rpc('ping')));
    const list = rpc('tools/list') as Msg;
    const tools = (
      rpcResult(await post(withAssertion(list, await assertion('alice', list)))) as { tools: Array<{ name: string }> }
    ).tools
      .map((t) => t.name)
      .sort();
    assert.deepEqual(tools, ['echo', 'get_customer', 'slow_echo']);
  });

  it('the x-behalf-user header carries an assertion for a single-message request; both header and _meta is refused', async () => {
    const msg = toolCall('get_customer', { customer_id: 'c-200' }) as Msg;
    rpcResult(await post(msg, { 'x-behalf-user': await assertion('bob', msg) }));
    assert.equal((await lastRow('decision')).userSubject, 'bob');
    const before = canary.calls.length;
    await assertRefused(
      await post(withAssertion(msg, await assertion('bob', msg)), { 'x-behalf-user': await assertion('bob', msg) }),
      INVALID,
      'user_context_invalid: assertion in both _meta and header',
      before,
    );
  });

  it("a batch: each message is decided for its own assertion's user", async () => {
    const a = toolCall('get_customer', { customer_id: 'c-100' }) as Msg;
    const b = toolCall('get_customer', { customer_id: 'c-201' }) as Msg;
    const crossed = toolCall('get_customer', { customer_id: 'c-202' }) as Msg;
    // On a session of a revision with batches (2025-06-18 removed them).
    const r = await post(
      [
        withAssertion(a, await assertion('alice', a)),
        withAssertion(b, await assertion('bob', b)),
        withAssertion(crossed, await assertion('alice', crossed)),
      ],
      {},
      await openSession(url, agent, '2025-03-26'),
    );
    const answers = new Map(
      (r.json as Array<{ id: number; result?: unknown; error?: { code: number; message: string } }>).map((x) => [
        x.id,
        x,
      ]),
    );
    assert.ok(answers.get(a.id!)!.result);
    assert.ok(answers.get(b.id!)!.result);
    assert.deepEqual(answers.get(crossed.id!)!.error, DENIED);
  });

  it('on a token route, a message carrying signed context is refused (one user per call); without it the token user is used', async () => {
    const headers = await fx.headersFor('alice', { upstream: 'tok' });
    const tokSession = await openSession(tokUrl, headers);
    const msg = toolCall('get_customer', { customer_id: 'c-100' }) as Msg;
    const before = canary.calls.length;
    const r = await postJson(
      tokUrl,
      headers,
      withAssertion(msg, await assertion('alice', msg, { audience: tokUrl })),
      tokSession,
    );
    await assertRefused(
      r,
      INVALID,
      'user_context_invalid: signed user context not accepted on this route',
      before,
      'alice',
    );
    rpcResult(await postJson(tokUrl, headers, msg, tokSession));
    assert.equal((await lastRow('decision')).userIssuer, fx.idp.issuer);
  });

  it("one agent session, alice and bob interleaved and concurrent: each upstream request carries its own user's downstream assertion", async () => {
    const N = 16;
    const jobs: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      for (const user of ['alice', 'bob']) {
        const msg = toolCall('slow_echo', { text: `${user}-signed-${i}`, ms: (i * 5) % 20 }) as Msg;
        jobs.push(
          assertion(user, msg)
            .then((jwt) => post(withAssertion(msg, jwt)))
            .then((r) => {
              rpcResult(r);
            }),
        );
      }
    }
    await Promise.all(jobs);
    const keys = createLocalJWKSet(signer.jwks() as never);
    const seen: Record<string, number> = {};
    for (const call of canary.calls.filter((c) => String(c.args.text).includes('-signed-'))) {
      const owner = String(call.args.text).split('-')[0]!;
      const { payload } = await jwtVerify(String(call.headers.authorization).slice('Bearer '.length), keys, {
        audience: canary.url,
      });
      assert.equal(payload.sub, owner);
      seen[owner] = (seen[owner] ?? 0) + 1;
    }
    assert.deepEqual(seen, { alice: N, bob: N });
  });

  it('_meta["behalf/user"] never reaches the upstream; the rest of _meta does', async () => {
    const msg = toolCall('echo', { text: 'meta-kept' }) as Msg;
    rpcResult(await post(withAssertion(msg, await assertion('alice', msg), { 'example/trace': 'keep-me' })));
    const call = canary.calls.at(-1)!;
    assert.equal(call.meta?.['example/trace'], 'keep-me', 'positive control: the upstream sees _meta');
    assert.ok(issued.length > 30);
    for (const r of canary.requests) {
      assert.ok(!r.body.includes(META_KEY), 'the assertion key reached the upstream');
      for (const t of issued)
        assert.ok(!r.body.includes(t) && !JSON.stringify(r.headers).includes(t), 'an assertion reached the upstream');
    }
    for (const c of canary.calls) assert.equal(c.meta?.[META_KEY], undefined);
  });
});

describe('signed user context: the parts', () => {
  it('callBinding is base64url(SHA-256) of the documented canonical JSON', () => {
    const expected = createHash('sha256')
      .update('{"arguments":{"customer_id":"c-100"},"method":"tools/call","name":"get_customer"}')
      .digest('base64url');
    assert.equal(
      callBinding({ method: 'tools/call', params: { name: 'get_customer', arguments: { customer_id: 'c-100' } } }),
      expected,
    );
    assert.equal(
      callBinding({
        method: 'tools/call',
        params: { arguments: { customer_id: 'c-100' }, name: 'get_customer', _meta: { x: 1 } },
      }),
      expected,
    );
    const read = createHash('sha256')
      .update('{"method":"resources/read","name":"crm://customers/c-100"}')
      .digest('base64url');
    assert.equal(callBinding({ method: 'resources/read', params: { uri: 'crm://customers/c-100' } }), read);
    assert.notEqual(
      callBinding({ method: 'tools/call', params: { name: 'get_customer', arguments: { customer_id: 'c-200' } } }),
      expected,
    );
    assert.equal(
      callBinding({ method: 'tools/call', params: { name: 'x' } }),
      callBinding({ method: 'tools/call', params: { name: 'x', arguments: {} } }),
    );
  });

  it('takeUserAssertion removes the key and only it; _meta goes when it held nothing else', () => {
    const m = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'x', _meta: { [META_KEY]: 'A', progressToken: 7 } },
    } as JsonRpcMessage;
    const { msg, assertion } = takeUserAssertion(m, META_KEY);
    assert.equal(assertion, 'A');
    assert.deepEqual(msg, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'x', _meta: { progressToken: 7 } },
    });
    assert.deepEqual(
      takeUserAssertion({ jsonrpc: '2.0', method: 'n', params: { _meta: { [META_KEY]: 'A' } } }, META_KEY).msg,
      { jsonrpc: '2.0', method: 'n', params: {} },
    );
    const untouched = { jsonrpc: '2.0', id: 2, method: 'ping' } as JsonRpcMessage;
    assert.equal(takeUserAssertion(untouched, META_KEY).msg, untouched);
  });

  it('the replay cache keeps an id until it expires, and when full of live ids refuses rather than forgets', async () => {
    let t = 1000;
    const c = new MemoryReplayCache({ maxEntries: 3, now: () => t });
    assert.equal(await c.firstUse('a', 1010), true);
    assert.equal(await c.firstUse('a', 1010), false);
    assert.equal(await c.firstUse('b', 1020), true);
    assert.equal(await c.firstUse('c', 1030), true);
    assert.equal(await c.firstUse('d', 1030), false, 'full: refused');
    assert.equal(await c.firstUse('b', 1020), false, 'b was not forgotten');
    t = 1011;
    assert.equal(await c.firstUse('d', 1030), true, 'a expired and made room');
    assert.equal(c.size, 3);
  });

  it('keys from a jwksUri: verified, refetched for a new kid (rotation without restart)', async () => {
    const k1 = await signingKey('k1');
    const k2 = await signingKey('k2');
    let published = [k1.jwk];
    const server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published })),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const cfg = SignedContextSchema.parse({
        issuer: PLATFORM,
        jwksUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
        algorithms: ['ES256'],
      });
      const v = new SignedContextVerifier(cfg, {
        baseDir: tempDir(),
        replay: new MemoryReplayCache(),
        clients: [],
        delegation: 'off',
        jwksCooldownMs: 0,
      });
      const msg = { method: 'tools/call', params: { name: 'echo', arguments: {} } };
      const sign = (k: SigningKey) =>
        new SignJWT({ sub: 'alice', jti: randomBytes(8).toString('hex'), call: callBinding(msg) })
          .setProtectedHeader({ alg: 'ES256', kid: k.kid })
          .setIssuer(PLATFORM)
          .setAudience('https://gw/mcp/up')
          .setIssuedAt()
          .setExpirationTime('30s')
          .sign(k.key);
      const client = { id: 'agent', method: 'api-key' as const, credentialId: 'k' };
      assert.equal(
        (await v.verify(await sign(k1), { audience: 'https://gw/mcp/up', call: callBinding(msg), client })).subject,
        'alice',
      );
      await assert.rejects(
        v.verify(await sign(k2), { audience: 'https://gw/mcp/up', call: callBinding(msg), client }),
        (e: unknown) => e instanceof BehalfError && e.message === 'unknown key',
      );
      published = [k1.jwk, k2.jwk];
      assert.equal(
        (await v.verify(await sign(k2), { audience: 'https://gw/mcp/up', call: callBinding(msg), client })).subject,
        'alice',
      );
    } finally {
      server.close();
    }
  });

  it('config: a route opts in only where signedContext is configured, in dual mode, and only on HTTP upstreams', () => {
    const base = {
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', apiKeys: [{ id: 'k', hash: `sha256:${'0'.repeat(64)}` }] }],
      userAuth: { issuers: [{ issuer: 'https://idp.test' }] },
      audit: { sqlitePath: ':memory:' },
    };
    const http = { transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', inbound: ['signed-context'] };
    const sc = { issuer: PLATFORM, jwks: 'file:/dev/null' };
    assert.throws(
      () => parseConfig({ ...base, upstreams: { up: http } }, tempDir()),
      /upstreams\.up\.inbound: signed-context needs userAuth\.signedContext/,
    );
    assert.throws(
      () =>
        parseConfig(
          { ...base, userAuth: { ...base.userAuth, mode: 'oauth', signedContext: sc }, upstreams: { up: http } },
          tempDir(),
        ),
      /needs userAuth\.mode: dual/,
    );
    assert.equal(
      parseConfig({ ...base, userAuth: { ...base.userAuth, signedContext: sc }, upstreams: { up: http } }, tempDir())
        .config.userAuth.signedContext?.maxAgeSeconds,
      60,
    );
    assert.equal(
      GatewayConfigSchema.safeParse({
        ...base,
        upstreams: { up: { transport: 'stdio', command: 'x', inbound: ['signed-context'] } },
      }).success,
      false,
      'a stdio child must never serve two users',
    );
    assert.equal(SignedContextSchema.safeParse({ issuer: PLATFORM }).success, false, 'keys are required');
    assert.equal(
      SignedContextSchema.safeParse({ issuer: PLATFORM, jwks: 'file:a', jwksUri: 'https://x/jwks' }).success,
      false,
      'one key source',
    );
    assert.equal(
      SignedContextSchema.safeParse({ issuer: PLATFORM, jwks: 'file:a', algorithms: ['HS256'] }).success,
      false,
      'no HMAC',
    );
  });
});
