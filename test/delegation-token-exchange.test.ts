/**
 * Downstream calls as the user (docs/architecture.md §5, review check BND-09): the gateway
 * exchanges the user's token at the real dev IdP (RFC 8693) for a token whose
 * subject is the user, whose actor is the gateway and whose audience is the
 * upstream, and the demo CRM — a resource server that validates its own
 * tokens — decides by that subject itself. So the CRM's own check holds even
 * when the gateway's policy is opened wide, the agent's credentials and the
 * user's incoming token never reach the CRM, an exchanged token is never
 * served to another user, and a credential that cannot be had refuses the
 * call (audited) instead of falling back to anything broader.
 *
 * Also the inbound side: a token-exchange token is accepted only from the
 * client named as its actor (act.sub), and only from a client its may_act
 * names.
 *
 * No assertion message, log line or error here carries a token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startCrmHttp, type CrmAuthEvent, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import { generateSigningJwks, TOKEN_EXCHANGE_GRANT, type DevIdp, type ExchangeRecord } from '../demo/idp/index.js';
import { connectStreamable } from './helpers/clients.js';
import {
  AGENT,
  CRM_STDIO,
  EXCHANGER,
  OTHER_AGENT,
  PASSWORD,
  startFixture,
  type Fixture,
  type FixtureOptions,
} from './helpers/fixture.js';
import { nowSeconds, signWith } from './helpers/auth-tokens.js';
import {
  INITIALIZE,
  openSession,
  postJson,
  rawStream,
  rpcError,
  rpcResult,
  toolCall,
  type RawResponse,
} from './helpers/raw-http.js';

const NO_CREDENTIAL = { code: -32010, message: 'No downstream credential could be obtained for this user' };
/** The gateway's policy opened wide: every tool, everyone. Only the CRM's own check stands between alice and bob's data. */
const OPEN_WIDE = [{ id: 'open-wide', effect: 'allow', tools: ['*'] }];
const DOWNSTREAM = {
  strategy: 'token-exchange',
  clientId: EXCHANGER.clientId,
  clientSecret: `env:${EXCHANGER.secretEnv}`,
  scopes: ['crm:read'],
  toolScopes: { update_customer: ['crm:read', 'crm:write'], export_all_customers: ['crm:export'] },
};

/** Everything the CRM received and made of it. */
interface Seen {
  requests: CrmRequestInfo[];
  auth: CrmAuthEvent[];
}

interface Env {
  fx: Fixture;
  crm: CrmHttpServer;
  seen: Seen;
  url: string;
  close(): Promise<void>;
}

/** A real dev IdP, a CRM validating tokens of that IdP over HTTP, and the gateway exchanging tokens in front of it. */
async function startEnv(
  o: { downstream?: Record<string, unknown>; fixture?: FixtureOptions; sse?: boolean } = {},
): Promise<Env> {
  const seen: Seen = { requests: [], auth: [] };
  let crm: CrmHttpServer | undefined;
  const fx = await startFixture({
    exchanger: {},
    policy: OPEN_WIDE,
    ...o.fixture,
    upstreams: async (idp: DevIdp) => {
      crm = await startCrmHttp({
        auth: { issuer: idp.issuer },
        onRequest: (i) => seen.requests.push(i),
        onAuth: (e) => seen.auth.push(e),
      });
      const downstream = { ...DOWNSTREAM, ...o.downstream };
      return {
        crm: { transport: 'streamable-http', url: crm.url, downstream },
        ...(o.sse ? { 'crm-sse': { transport: 'sse', url: crm.sseUrl, downstream } } : {}),
      };
    },
  });
  return {
    fx,
    crm: crm!,
    seen,
    url: fx.gateway.urlFor('crm'),
    async close() {
      await fx.close();
      await crm?.close();
    },
  };
}

function structured(r: RawResponse): Record<string, unknown> {
  const result = rpcResult(r) as { structuredContent?: Record<string, unknown>; isError?: boolean };
  assert.notEqual(result.isError, true, 'the tool call succeeded');
  return result.structuredContent!;
}

function toolFailure(r: RawResponse): string {
  const result = rpcResult(r) as { content: Array<{ text?: string }>; isError?: boolean };
  assert.equal(result.isError, true, 'the tool refused');
  return result.content.map((c) => c.text ?? '').join('\n');
}

const issuedFor = (idp: DevIdp, sub: string, scope?: string): ExchangeRecord[] =>
  idp.exchanges().filter((r) => r.outcome === 'issued' && r.sub === sub && (scope === undefined || r.scope === scope));

/** Every string a test knows that must never reach the CRM: the agent's API keys and the users' incoming tokens. */
function assertNothingForeign(seen: Seen, forbidden: readonly string[]): void {
  const all = JSON.stringify(seen.requests);
  forbidden.forEach((s, i) => assert.ok(!all.includes(s), `forbidden credential #${i} reached the CRM`));
}

describe('token exchange: the CRM receives a token for the user, from the gateway, for itself — and decides by it', () => {
  let env: Env;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let aliceSid: string;
  let bobSid: string;
  const forbidden: string[] = [];

  before(async () => {
    env = await startEnv({ sse: true });
    alice = await env.fx.headersFor('alice');
    bob = await env.fx.headersFor('bob');
    forbidden.push(env.fx.apiKey, env.fx.otherApiKey, alice.authorization!.slice(7), bob.authorization!.slice(7));
    aliceSid = await openSession(env.url, alice);
    bobSid = await openSession(env.url, bob);
  });
  after(() => env?.close());

  it("canary: what the CRM received for alice's call is a token about alice, for the CRM, acted on by the gateway — never the agent's key or alice's own token", async () => {
    const mark = { auth: env.seen.auth.length, requests: env.seen.requests.length };
    const started = performance.now();
    const r = await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-100' }), aliceSid);
    const ms = performance.now() - started;
    assert.equal(structured(r).owner, 'alice');

    // POSTs: the calls. (The session's GET stream, opened by the upstream transport on its own schedule, carries alice's token as well.)
    const calls = env.seen.auth.slice(mark.auth).filter((e) => e.method === 'POST');
    assert.equal(calls.length, 1, 'one request reached the CRM');
    const c = calls[0]!;
    assert.equal(c.ok, true);
    assert.deepEqual(
      {
        sub: c.claims?.sub,
        aud: c.claims?.aud,
        act: c.claims?.act,
        client_id: c.claims?.client_id,
        scope: c.claims?.scope,
        role: c.claims?.role,
      },
      {
        sub: 'alice',
        aud: env.crm.url,
        act: { sub: EXCHANGER.clientId },
        client_id: EXCHANGER.clientId,
        scope: 'crm:read',
        role: 'rep',
      },
    );
    // The Authorization the CRM got is none of the credentials that came into the gateway.
    const posts = env.seen.requests.slice(mark.requests).filter((i) => i.method === 'POST');
    assert.equal(posts.length, 1);
    const got = String(posts[0]!.headers.authorization);
    assert.match(got, /^Bearer /);
    assert.ok(!forbidden.some((f) => got.includes(f)), 'the CRM got a credential that came into the gateway');
    assert.equal(decodeJwt(got.slice(7)).jti, c.claims?.jti, 'the header the CRM got is the token it verified');
    assert.ok(
      env.seen.requests.every((i) => i.headers['x-api-key'] === undefined),
      'no API key header ever reaches the CRM',
    );
    assertNothingForeign(env.seen, forbidden);

    // The audit trail names the strategy and the exchanged token by its jti — the one the CRM saw.
    const outcome = (await env.fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 1 }))[0]!;
    assert.equal(outcome.outcome, 'ok');
    assert.equal(outcome.downstreamStrategy, 'token-exchange');
    assert.equal(outcome.downstreamCredentialId, c.claims?.jti);
    assert.ok(ms < 5000, `call latency ${ms.toFixed(1)} ms`);
  });

  it('positive controls: alice reads her own customer, bob reads his', async () => {
    assert.equal(
      structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-101' }), aliceSid)).name,
      'Bruno Castell',
    );
    assert.equal(
      structured(await postJson(env.url, bob, toolCall('get_customer', { customer_id: 'c-200' }), bobSid)).name,
      'Farid Haddad',
    );
  });

  it("with the gateway policy opened wide, the CRM still refuses bob's customers to alice (read, update, list, resource) — by the token's subject", async () => {
    const mark = env.seen.auth.length;
    const read = await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-200' }), aliceSid);
    const decision = (await env.fx.gateway.runtime.audit.query({ kind: 'decision', limit: 1 }))[0]!;
    assert.deepEqual(
      [decision.target, decision.decision, decision.ruleIds],
      ['get_customer', 'allow', ['open-wide']],
      'the gateway let it through',
    );
    assert.equal(toolFailure(read), 'Unknown customer: c-200');
    assert.doesNotMatch(read.text, /Farid|Haddad|3300000/);

    const update = await postJson(
      env.url,
      alice,
      toolCall('update_customer', { customer_id: 'c-201', notes: 'alice was here' }),
      aliceSid,
    );
    assert.equal(toolFailure(update), 'Unknown customer: c-201');
    const check = await postJson(env.url, bob, toolCall('get_customer', { customer_id: 'c-201' }), bobSid);
    assert.equal(structured(check).notes, 'Confidential: acquisition talks.', "bob's record is unchanged");

    const list = structured(await postJson(env.url, alice, toolCall('list_customers', {}), aliceSid)) as {
      customers: Array<{ owner: string }>;
    };
    assert.equal(list.customers.length, 5);
    assert.ok(
      list.customers.every((c) => c.owner === 'alice'),
      'a rep lists only her own',
    );
    const bobs = structured(await postJson(env.url, alice, toolCall('list_customers', { owner: 'bob' }), aliceSid)) as {
      customers: unknown[];
    };
    assert.deepEqual(bobs.customers, []);

    // Every one of these reached the CRM as alice: the refusals are the CRM's, not the gateway's.
    const subs = new Set(
      env.seen.auth
        .slice(mark)
        .filter((e) => e.claims)
        .map((e) => e.claims!.sub),
    );
    assert.ok(subs.has('alice'));
    assert.ok(env.seen.auth.slice(mark).every((e) => e.ok));
  });

  it('the token is narrowed per tool: update_customer gets crm:write, reads do not', async () => {
    const mark = env.seen.auth.length;
    const updated = structured(
      await postJson(
        env.url,
        alice,
        toolCall('update_customer', { customer_id: 'c-102', notes: 'Sent the questionnaire.' }),
        aliceSid,
      ),
    );
    assert.equal(updated.notes, 'Sent the questionnaire.');
    structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-102' }), aliceSid));
    assert.deepEqual(
      env.seen.auth
        .slice(mark)
        .filter((e) => e.method === 'POST')
        .map((e) => e.claims?.scope),
      ['crm:read crm:write', 'crm:read'],
    );
  });

  it('cache: two calls cost one exchange — per user, audience and scope', async () => {
    const READ = 'crm:read';
    const WRITE = 'crm:read crm:write';
    const before = {
      aliceRead: issuedFor(env.fx.idp, 'alice', READ).length,
      bobWrite: issuedFor(env.fx.idp, 'bob', WRITE).length,
    };
    assert.deepEqual(
      before,
      { aliceRead: 1, bobWrite: 0 },
      "alice's session exchanged once for reads; bob never for writes yet",
    );
    structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-103' }), aliceSid));
    structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-104' }), aliceSid));
    assert.equal(issuedFor(env.fx.idp, 'alice', READ).length, 1, "alice's read token is reused");
    structured(
      await postJson(env.url, bob, toolCall('update_customer', { customer_id: 'c-203', phone: '+1-555-0299' }), bobSid),
    );
    structured(
      await postJson(env.url, bob, toolCall('update_customer', { customer_id: 'c-204', phone: '+1-555-0298' }), bobSid),
    );
    assert.equal(issuedFor(env.fx.idp, 'bob', WRITE).length, 1, 'two updates by bob: one exchange');
    // A new session of the same user shares the user's tokens: the cache is per user, not per session.
    const sid = await openSession(env.url, alice);
    structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-100' }), sid));
    assert.equal(issuedFor(env.fx.idp, 'alice', READ).length, 1);
  });

  it("alice's cached token is never used for bob: 20 interleaved concurrent calls each, every CRM request carries its own session's user", async () => {
    const mark = { auth: env.seen.auth.length };
    const crmSessionOf = new Map<string, string>(); // CRM session id → the sub that used it
    const jobs: Array<Promise<{ who: string; owner: unknown }>> = [];
    for (let i = 0; i < 20; i++) {
      for (const [who, headers, sid, prefix] of [
        ['alice', alice, aliceSid, 'c-10'],
        ['bob', bob, bobSid, 'c-20'],
      ] as const) {
        jobs.push(
          postJson(env.url, headers, toolCall('get_customer', { customer_id: `${prefix}${i % 5}` }), sid).then((r) => ({
            who,
            owner: structured(r).owner,
          })),
        );
      }
    }
    const results = await Promise.all(jobs);
    assert.equal(results.length, 40);
    for (const r of results) assert.equal(r.owner, r.who, "every call returned its own user's customer");
    const events = env.seen.auth.slice(mark.auth).filter((e) => e.method === 'POST');
    assert.equal(events.length, 40);
    for (const e of events) {
      assert.equal(e.ok, true);
      assert.ok(e.sessionId, 'each request names its CRM session');
      const prior = crmSessionOf.get(e.sessionId!);
      if (prior) assert.equal(e.claims!.sub, prior, 'a CRM session saw two different users');
      crmSessionOf.set(e.sessionId!, String(e.claims!.sub));
    }
    assert.deepEqual([...new Set(crmSessionOf.values())].sort(), ['alice', 'bob']);
    assertNothingForeign(env.seen, forbidden);
  });

  it('single flight: 8 concurrent first sessions and calls of one user (carol) cost exactly one exchange', async () => {
    const carol = await env.fx.headersFor('carol');
    forbidden.push(carol.authorization!.slice(7));
    assert.equal(issuedFor(env.fx.idp, 'carol').length, 0);
    const sids = await Promise.all(Array.from({ length: 8 }, () => openSession(env.url, carol)));
    const reads = await Promise.all(
      sids.map((sid, i) =>
        postJson(env.url, carol, toolCall('get_customer', { customer_id: i % 2 ? 'c-100' : 'c-200' }), sid),
      ),
    );
    // A manager reads everyone's, by the CRM's own rule.
    for (const r of reads) assert.ok(['alice', 'bob'].includes(String(structured(r).owner)));
    const issued = issuedFor(env.fx.idp, 'carol');
    assert.equal(issued.length, 1, `${issued.length} exchanges`);
    assert.equal(issued[0]!.clientId, EXCHANGER.clientId);
  });

  it('legacy SSE upstream: the same exchange, with the SSE endpoint as audience', async () => {
    const url = env.fx.gateway.urlFor('crm-sse');
    const headers = await env.fx.headersFor('bob', { upstream: 'crm-sse' });
    forbidden.push(headers.authorization!.slice(7));
    const mark = env.seen.auth.length;
    const sid = await openSession(url, headers);
    assert.equal(
      structured(await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-202' }), sid)).owner,
      'bob',
    );
    assert.equal(
      toolFailure(await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), sid)),
      'Unknown customer: c-100',
    );
    const events = env.seen.auth.slice(mark);
    assert.ok(events.length >= 3);
    for (const e of events) assert.deepEqual([e.ok, e.claims?.sub, e.claims?.aud], [true, 'bob', env.crm.sseUrl]);
    assertNothingForeign(env.seen, forbidden);
  });

  it("an exchange the IdP refuses (a scope the user's token does not hold) fails that call with -32010, audited, and nothing reaches the CRM", async () => {
    const mark = { requests: env.seen.requests.length, idp: env.fx.idp.exchanges().length };
    const r = await postJson(env.url, alice, toolCall('export_all_customers', {}), aliceSid);
    assert.equal(r.status, 200);
    assert.deepEqual(rpcError(r), NO_CREDENTIAL);
    assert.deepEqual(
      env.seen.requests.slice(mark.requests).filter((i) => i.method === 'POST'),
      [],
      'no call — with any credential — reached the CRM',
    );
    assert.deepEqual(env.fx.idp.exchanges().slice(mark.idp), [
      { outcome: 'refused', clientId: EXCHANGER.clientId, error: 'invalid_scope' },
    ]);
    const outcome = (await env.fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 1 }))[0]!;
    assert.deepEqual(
      [outcome.target, outcome.outcome, outcome.downstreamCredentialId],
      ['export_all_customers', 'downstream_credential_unavailable', undefined],
    );
    assert.match(outcome.reason ?? '', /refused by .*invalid_scope/);
    // The session goes on: the next call with an obtainable credential works.
    assert.equal(
      structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-100' }), aliceSid)).owner,
      'alice',
    );
  });
});

describe('token exchange: credentials that cannot be had refuse the call, with no fallback', () => {
  it("the gateway's client is not allowed the grant: initialize fails with -32010, the CRM sees nothing", async () => {
    const logs: string[] = [];
    // other-agent may exchange (so the IdP offers the grant); the gateway's own client may not.
    const env = await startEnv({
      fixture: {
        exchanger: { grantTypes: ['client_credentials'] },
        idp: {
          clients: [
            { ...AGENT, grantTypes: ['password'], scope: 'mcp:tools crm:read crm:write' },
            { ...OTHER_AGENT, grantTypes: [TOKEN_EXCHANGE_GRANT] },
          ],
        },
        gateway: { log: (l) => logs.push(l) },
      },
    });
    try {
      const alice = await env.fx.headersFor('alice');
      const r = await postJson(env.url, alice, INITIALIZE);
      assert.equal(r.status, 200);
      assert.deepEqual(rpcError(r), NO_CREDENTIAL);
      assert.equal(r.headers['mcp-session-id'], undefined);
      assert.deepEqual(env.seen.requests, []);
      const outcome = (await env.fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 1 }))[0]!;
      assert.deepEqual(
        [outcome.method, outcome.outcome, outcome.userSubject],
        ['initialize', 'downstream_credential_unavailable', 'alice'],
      );
      // oidc-provider refuses a grant the client is not registered for (as invalid_request) before any grant handler runs.
      assert.match(
        outcome.reason ?? '',
        /refused by .*invalid_request \(requested grant type is not allowed for this client\)/,
      );
      assert.ok(logs.some((l) => /downstream credential for crm failed: token exchange refused/.test(l)));
      for (const l of logs)
        assert.ok(
          !l.includes(alice.authorization!.slice(7)) && !l.includes(EXCHANGER.clientSecret),
          'a log line carries a secret',
        );
    } finally {
      await env.close();
    }
  });

  it('the IdP goes down: a credential already held serves until it expires; any new exchange fails with -32010 and nothing reaches the CRM', async () => {
    const env = await startEnv();
    try {
      const alice = await env.fx.headersFor('alice');
      const bob = await env.fx.headersFor('bob');
      const sid = await openSession(env.url, alice);
      await env.fx.idp.close();
      const posts = () => env.seen.requests.filter((i) => i.method === 'POST').length;
      const mark = posts();

      // Held: alice's crm:read token (the CRM has its keys already).
      assert.equal(
        structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-100' }), sid)).owner,
        'alice',
      );
      assert.equal(posts(), mark + 1);

      // Not held: alice's write narrowing, and anything for bob.
      const write = await postJson(
        env.url,
        alice,
        toolCall('update_customer', { customer_id: 'c-100', notes: 'x' }),
        sid,
      );
      assert.deepEqual(rpcError(write), NO_CREDENTIAL);
      const bobInit = await postJson(env.url, bob, INITIALIZE);
      assert.deepEqual(rpcError(bobInit), NO_CREDENTIAL);
      assert.equal(posts(), mark + 1, 'nothing reached the CRM for the refused calls');
      const outcomes = await env.fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 2 });
      for (const o of outcomes) {
        assert.equal(o.outcome, 'downstream_credential_unavailable');
        assert.match(o.reason ?? '', /unreachable/);
      }
    } finally {
      await env.close();
    }
  });

  it('a dead token endpoint (configured, nothing listening) fails every call the same way', async () => {
    const env = await startEnv({ downstream: { tokenEndpoint: 'http://127.0.0.1:9/token' } });
    try {
      const r = await postJson(env.url, await env.fx.headersFor('alice'), INITIALIZE);
      assert.deepEqual(rpcError(r), NO_CREDENTIAL);
      assert.deepEqual(env.seen.requests, []);
    } finally {
      await env.close();
    }
  });

  it('an exchanged token that expires is never presented again: the next call gets a fresh exchange', async () => {
    // Tokens live 2 s and are used until they expire (no renewal margin), so the second call meets an expired one in the cache.
    const env = await startEnv({
      fixture: { idp: { exchangedTokenTtlSeconds: 2 } },
      downstream: { refreshSkewSeconds: 0 },
    });
    try {
      const alice = await env.fx.headersFor('alice');
      const sid = await openSession(env.url, alice);
      const mark = env.seen.auth.length;
      structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-100' }), sid));
      const first = env.seen.auth.at(-1)!.claims!;
      assert.equal(Number(first.exp) - nowSeconds() <= 2, true);
      await sleep((Number(first.exp) - Date.now() / 1000) * 1000 + 300);
      structured(await postJson(env.url, alice, toolCall('get_customer', { customer_id: 'c-101' }), sid));
      const second = env.seen.auth.at(-1)!.claims!;
      assert.notEqual(second.jti, first.jti);
      assert.ok(Number(second.exp) > Number(first.exp));
      assert.ok(
        env.seen.auth.slice(mark).every((e) => e.ok),
        'the CRM never saw an expired token',
      );
      assert.equal(issuedFor(env.fx.idp, 'alice').length, 2);
    } finally {
      await env.close();
    }
  });
});

describe('inbound token-exchange tokens: accepted only from the client named as actor (and in may_act)', () => {
  let fx: Fixture;
  let jwks: { keys: object[] };
  let frontEnd: string;
  const url = () => fx.gateway.urlFor('crm');
  const agentKey = () => ({ 'x-api-key': fx.apiKey });
  const otherKey = () => ({ 'x-api-key': fx.otherApiKey });

  before(async () => {
    jwks = await generateSigningJwks();
    const grants = ['password', 'client_credentials', TOKEN_EXCHANGE_GRANT] as const;
    fx = await startFixture({
      upstreams: { crm: CRM_STDIO },
      idp: {
        jwks,
        clients: [
          { ...AGENT, grantTypes: [...grants], scope: 'mcp:tools crm:read crm:write' },
          { ...OTHER_AGENT, grantTypes: [...grants], scope: 'mcp:tools crm:read crm:write' },
        ],
      },
    });
    // alice signed in at some front end; the agents exchange that token for one for the gateway.
    frontEnd = (
      await fx.idp.passwordToken({
        ...AGENT,
        username: 'alice',
        password: PASSWORD,
        resource: 'http://127.0.0.1:1/app',
      })
    ).accessToken;
  });
  after(() => fx?.close());

  const exchangedBy = async (client: typeof AGENT) =>
    (await fx.idp.exchangeToken({ ...client, subjectToken: frontEnd, resource: url() })).accessToken;
  const init = (headers: Record<string, string>, token: string) =>
    postJson(url(), { ...headers, authorization: `Bearer ${token}` }, INITIALIZE);
  const lastAuthFailure = async () =>
    (await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 1 }))[0]?.reason ?? '';

  it('a token other-agent exchanged is refused from agent (401, delegation mismatch) and accepted from other-agent', async () => {
    const token = await exchangedBy(OTHER_AGENT);
    assert.deepEqual(
      [decodeJwt(token).act, decodeJwt(token).client_id],
      [{ sub: OTHER_AGENT.clientId }, OTHER_AGENT.clientId],
    );
    const refused = await init(agentKey(), token);
    assert.equal(refused.status, 401);
    assert.match(String(refused.headers['www-authenticate']), /error="invalid_token"/);
    assert.match(await lastAuthFailure(), /^delegation_mismatch/);
    assert.equal((await init(otherKey(), token)).status, 200);
  });

  it('the same flow with the right client succeeds, and the user records the actor', async () => {
    const token = await exchangedBy(AGENT);
    const r = await init(agentKey(), token);
    assert.equal(r.status, 200, 'the agent presents the token it exchanged itself');
    const p = await fx.gateway.runtime.authenticator.authenticate({
      headers: { ...agentKey(), authorization: `Bearer ${token}` },
      resource: url(),
    });
    assert.deepEqual(
      [p.client.id, p.user?.subject, p.user?.actor, p.user?.tokenClientId],
      ['agent', 'alice', AGENT.clientId, AGENT.clientId],
    );
  });

  /** Tokens signed with the IdP's own key (so only the claims under test are wrong). */
  const signed = async (claims: Record<string, unknown>) => {
    const key = jwks.keys[0] as { kid: string };
    const now = nowSeconds();
    return signWith(
      key,
      { alg: 'ES256', kid: key.kid, typ: 'at+jwt' },
      {
        iss: fx.idp.issuer,
        sub: 'alice',
        aud: url(),
        iat: now,
        exp: now + 300,
        jti: `t-${Math.random()}`,
        scope: 'mcp:tools crm:read',
        role: 'rep',
        customers: ['c-100'],
        ...claims,
      },
    );
  };

  it('act.sub naming another client is refused even when client_id names the presenting one; act.sub naming it passes', async () => {
    const r = await init(agentKey(), await signed({ client_id: AGENT.clientId, act: { sub: OTHER_AGENT.clientId } }));
    assert.equal(r.status, 401);
    assert.match(await lastAuthFailure(), /^delegation_mismatch/);
    assert.equal(
      (await init(agentKey(), await signed({ client_id: AGENT.clientId, act: { sub: AGENT.clientId } }))).status,
      200,
    );
    // A chain: the agent acts now, on a token other-agent acted on before: the current actor is what counts.
    assert.equal(
      (
        await init(
          agentKey(),
          await signed({ client_id: AGENT.clientId, act: { sub: AGENT.clientId, act: { sub: OTHER_AGENT.clientId } } }),
        )
      ).status,
      200,
    );
    // A malformed act is refused.
    assert.equal((await init(agentKey(), await signed({ client_id: AGENT.clientId, act: 'agent' }))).status, 401);
  });

  it('may_act: only a client it names may present the token', async () => {
    assert.equal(
      (await init(agentKey(), await signed({ client_id: AGENT.clientId, may_act: { sub: OTHER_AGENT.clientId } })))
        .status,
      401,
    );
    assert.match(await lastAuthFailure(), /^delegation_mismatch/);
    assert.equal(
      (await init(agentKey(), await signed({ client_id: AGENT.clientId, may_act: { client_id: AGENT.clientId } })))
        .status,
      200,
    );
    assert.equal(
      (await init(agentKey(), await signed({ client_id: AGENT.clientId, may_act: { sub: AGENT.clientId } }))).status,
      200,
    );
  });

  it('the dev IdP honours may_act too: a client it does not name cannot exchange the token', async () => {
    const idp = fx.idp;
    const subject = await signed({
      client_id: AGENT.clientId,
      aud: 'http://127.0.0.1:1/app',
      may_act: { sub: AGENT.clientId },
    });
    await assert.rejects(idp.exchangeToken({ ...OTHER_AGENT, subjectToken: subject, resource: url() }), {
      error: 'unauthorized_client',
    });
    const ok = await idp.exchangeToken({ ...AGENT, subjectToken: subject, resource: url() });
    assert.equal(
      decodeJwt(ok.accessToken).may_act,
      undefined,
      'may_act constrained the subject token, not the exchanged one',
    );
  });
});

describe('the demo CRM with auth on, directly', () => {
  let fx: Fixture;
  let crm: CrmHttpServer;
  const events: CrmAuthEvent[] = [];

  before(async () => {
    fx = await startFixture({ noGateway: true });
    crm = await startCrmHttp({ auth: { issuer: fx.idp.issuer }, onAuth: (e) => events.push(e) });
  });
  after(async () => {
    await crm?.close();
    await fx?.idp.close();
  });

  const tokenFor = async (user: string, resource: string) =>
    (await fx.idp.passwordToken({ ...AGENT, username: user, password: PASSWORD, resource })).accessToken;

  it('401 with a Bearer challenge without a token, and with error="invalid_token" for a wrong one', async () => {
    const none = await postJson(crm.url, {}, INITIALIZE);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="behalf-demo-crm"');
    const wrongAudience = await postJson(
      crm.url,
      { authorization: `Bearer ${await tokenFor('alice', 'http://127.0.0.1:1/other')}` },
      INITIALIZE,
    );
    assert.equal(wrongAudience.status, 401);
    assert.match(String(wrongAudience.headers['www-authenticate']), /error="invalid_token"/);
    assert.match(events.at(-1)?.reason ?? '', /token rejected/);
    const sse = await rawStream(crm.sseUrl, {});
    assert.equal(sse.status, 401);
    sse.close();
  });

  it("a session belongs to the subject who opened it: bob's valid token on alice's session is answered as unknown", async () => {
    const alice = await connectStreamable(crm.url, { authorization: `Bearer ${await tokenFor('alice', crm.url)}` });
    try {
      const sid = (alice.transport as StreamableHTTPClientTransport).sessionId!;
      const bob = {
        authorization: `Bearer ${await tokenFor('bob', crm.url)}`,
        accept: 'application/json, text/event-stream',
      };
      assert.equal((await postJson(crm.url, bob, toolCall('get_customer', { customer_id: 'c-100' }), sid)).status, 404);
      const own = await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
      assert.equal((own.structuredContent as { owner: string }).owner, 'alice');
    } finally {
      await alice.close();
    }
  });

  it('scopes count: a crm:read token cannot update, and a rep cannot export', async () => {
    const token = (
      await fx.idp.passwordToken({
        ...AGENT,
        username: 'alice',
        password: PASSWORD,
        resource: crm.url,
        scope: 'crm:read',
      })
    ).accessToken;
    const client = await connectStreamable(crm.url, { authorization: `Bearer ${token}` });
    try {
      const text = async (name: string, args: Record<string, unknown>) => {
        const r = (await client.callTool({ name, arguments: args })) as {
          isError?: boolean;
          content: Array<{ text?: string }>;
        };
        assert.equal(r.isError, true);
        return r.content[0]?.text;
      };
      assert.equal(
        await text('update_customer', { customer_id: 'c-100', notes: 'x' }),
        'Forbidden: the token lacks scope crm:write',
      );
      assert.equal(await text('export_all_customers', {}), 'Forbidden: the token lacks scope crm:export');
    } finally {
      await client.close();
    }
  });
});

describe("inbound patterns per route: the user's own token, an exchanged one (act), or both", () => {
  const grants = ['password', 'client_credentials', TOKEN_EXCHANGE_GRANT] as const;
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({
      upstreams: {
        own: { transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', inbound: ['token'] },
        exchanged: { transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', inbound: ['token-exchange'] },
      },
      idp: { clients: [{ ...AGENT, grantTypes: [...grants], scope: 'mcp:tools crm:read crm:write' }] },
      policy: [{ id: 'all', effect: 'allow', tools: ['*'] }],
    });
  });
  after(() => fx?.close());

  // Status of an initialize: 401 is the gateway refusing the token; anything else means it got past authentication
  // (the upstream on port 9 is not running, so a passing request ends in an upstream error, not a 401).
  const initStatus = async (route: string, token: string) =>
    (await postJson(fx.gateway.urlFor(route), { 'x-api-key': fx.apiKey, authorization: `Bearer ${token}` }, INITIALIZE))
      .status;
  const ownToken = (route: string) => fx.userToken('alice', { upstream: route });
  const exchangedToken = async (route: string) =>
    (
      await fx.idp.exchangeToken({
        ...AGENT,
        subjectToken: await fx.userToken('alice', { resource: 'http://127.0.0.1:1/app' }),
        resource: fx.gateway.urlFor(route),
      })
    ).accessToken;

  it('refuses each kind of token where the route does not list it, and accepts it where it does', async () => {
    assert.equal(
      await initStatus('own', await exchangedToken('own')),
      401,
      "an exchanged token on a route for the user's own tokens",
    );
    assert.match(
      (await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 1 }))[0]!.reason!,
      /exchanged \(act\) tokens are not accepted/,
    );
    assert.equal(
      await initStatus('exchanged', await ownToken('exchanged')),
      401,
      "the user's own token on a route for exchanged tokens",
    );
    assert.match(
      (await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 1 }))[0]!.reason!,
      /only exchanged tokens/,
    );
    // Positive controls: each kind where it is listed gets past authentication.
    assert.notEqual(await initStatus('own', await ownToken('own')), 401);
    assert.notEqual(await initStatus('exchanged', await exchangedToken('exchanged')), 401);
  });
});
