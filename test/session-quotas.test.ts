/**
 * Fair sessions (docs/architecture.md §2 step 5): one user cannot lock the
 * others out. At her quota alice gets 429 with Retry-After on every transport
 * (Streamable HTTP, legacy SSE, stateless), whichever agent she comes
 * through, while bob is served; her own idle sessions are evicted for her,
 * oldest first, with an audit record; the gateway-wide cap is a 503, never a
 * 502. Each refusal is audited with the step that made it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCrmHttp, type CrmHttpServer } from '../demo/crm/http.js';
import type { AuditRecord } from '../src/audit/event.js';
import { fingerprint } from '../src/shared/hash.js';
import { OTHER_AGENT, startFixture, type Fixture } from './helpers/fixture.js';
import {
  INITIALIZE,
  openSession,
  postJson,
  rawRequest,
  rawStream,
  rpcResult,
  toolCall,
  type RawResponse,
  type RawStream,
} from './helpers/raw-http.js';
import { statelessPost } from './helpers/transport-stateless.js';

type Who = 'alice' | 'bob' | 'carol' | 'aliceViaOther';

async function setup(sessions: Record<string, unknown>): Promise<{
  fx: Fixture;
  crm: CrmHttpServer;
  url: string;
  as: (who: Who) => Record<string, string>;
}> {
  const crm = await startCrmHttp();
  const fx = await startFixture({ upstreams: { crm: { transport: 'streamable-http', url: crm.url } }, sessions });
  const tokens = {
    alice: await fx.userToken('alice'),
    bob: await fx.userToken('bob'),
    carol: await fx.userToken('carol'),
    aliceViaOther: await fx.userToken('alice', { client: OTHER_AGENT }),
  };
  const as = (who: Who) => ({
    'x-api-key': who === 'aliceViaOther' ? fx.otherApiKey : fx.apiKey,
    authorization: `Bearer ${tokens[who]}`,
  });
  return { fx, crm, url: fx.gateway.urlFor('crm'), as };
}

async function sessionRecords(fx: Fixture, filter: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  return (await fx.gateway.runtime.audit.query({ kind: 'session', limit: 500 })).filter(filter);
}

function assertRefused(r: RawResponse, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  const retryAfter = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After: ${r.headers['retry-after']}`);
  const body = r.json as { error?: { code: number; message: string } };
  assert.equal(body.error?.code, -32000);
  assert.match(body.error.message, message);
}

const deleteSession = (url: string, headers: Record<string, string>, id: string) =>
  rawRequest(url, { method: 'DELETE', headers: { ...headers, 'mcp-session-id': id } });

const ownCall = async (url: string, headers: Record<string, string>, sid: string, customer: string) =>
  rpcResult(await postJson(url, headers, toolCall('get_customer', { customer_id: customer }), sid));

describe('session quotas: alice at her quota', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  const alices: string[] = [];
  before(async () => {
    // Nothing turns idle during this test: every refusal below is the quota, not a race with eviction.
    env = await setup({ maxSessions: 100, maxPerUser: 3, evictIdleAfterSeconds: 3600 });
  });
  after(async () => {
    await env?.fx.close();
    await env?.crm.close();
  });

  it('her first 3 sessions work (positive control)', async () => {
    for (let i = 0; i < 3; i++) alices.push(await openSession(env.url, env.as('alice')));
    for (const sid of alices) await ownCall(env.url, env.as('alice'), sid, 'c-100');
  });

  it('the 4th is 429 with Retry-After and a clear JSON-RPC error; bob opens and calls meanwhile', async () => {
    const refused = await postJson(env.url, env.as('alice'), INITIALIZE);
    assertRefused(refused, 429, /^Session quota exceeded: 3 sessions of this user are open/);
    assert.equal(refused.headers['mcp-session-id'], undefined);
    const bob = await openSession(env.url, env.as('bob'));
    await ownCall(env.url, env.as('bob'), bob, 'c-200');
    // Her existing sessions are untouched by the refusal.
    await ownCall(env.url, env.as('alice'), alices[0]!, 'c-100');
  });

  it('the quota is hers across agents and transports: another agent, legacy SSE and stateless are refused too', async () => {
    assertRefused(await postJson(env.url, env.as('aliceViaOther'), INITIALIZE), 429, /Session quota exceeded/);
    const sse = await rawStream(`${env.fx.gateway.baseUrl}/mcp/crm/sse`, env.as('alice'));
    await sse.ended;
    assert.equal(sse.status, 429, sse.text());
    const stateless = await statelessPost(env.url, env.as('alice'), 'tools/list');
    assert.equal(stateless.status, 429);
    assert.match(String(stateless.headers.get('retry-after')), /^\d+$/);
    // Bob's stateless connection is his own, and opens (positive control).
    const bobs = await statelessPost(env.url, env.as('bob'), 'tools/list');
    assert.equal(bobs.status, 200, JSON.stringify(bobs.body));
  });

  it('each refusal is audited as a session record naming its step', async () => {
    const refusals = await sessionRecords(env.fx, (r) => r.outcome === 'refused: session_quota_exceeded');
    assert.deepEqual(
      refusals.map((r) => [r.userSubject, r.clientId, r.refusedBy]),
      [
        ['alice', 'agent', 'handle_post'],
        ['alice', 'other-agent', 'handle_post'],
        ['alice', 'agent', 'open_legacy_stream'],
        ['alice', 'agent', 'handle_post'],
      ],
    );
  });

  it('after she DELETEs one she can open another', async () => {
    assert.equal((await deleteSession(env.url, env.as('alice'), alices.shift()!)).status, 200);
    alices.push(await openSession(env.url, env.as('alice')));
    await ownCall(env.url, env.as('alice'), alices.at(-1)!, 'c-101');
    assertRefused(await postJson(env.url, env.as('alice'), INITIALIZE), 429, /Session quota exceeded/);
  });
});

describe('session quotas: her idle sessions are evicted for her, oldest first', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  let stream: RawStream | undefined;
  before(async () => {
    env = await setup({ maxPerUser: 3, maxStreamsPerUser: 1, evictIdleAfterSeconds: 1 });
  });
  after(async () => {
    stream?.close();
    await env?.fx.close();
    await env?.crm.close();
  });

  it('a session with an open stream is never idle; the oldest idle one goes, with an audit record', async () => {
    const streaming = await openSession(env.url, env.as('alice'));
    stream = await rawStream(env.url, { ...env.as('alice'), 'mcp-session-id': streaming });
    assert.equal(stream.status, 200);
    const idle1 = await openSession(env.url, env.as('alice'));
    const idle2 = await openSession(env.url, env.as('alice'));
    // Her stream quota (1) is taken: a second stream is refused, her POSTs are not.
    const second = await rawRequest(env.url, {
      headers: { ...env.as('alice'), accept: 'text/event-stream', 'mcp-session-id': idle2 },
    });
    assertRefused(second, 429, /^Stream quota exceeded/);
    await new Promise((r) => setTimeout(r, 1200));
    await ownCall(env.url, env.as('alice'), idle2, 'c-100'); // idle2 is in use again, idle1 is the oldest idle

    const fresh = await openSession(env.url, env.as('alice'));
    await ownCall(env.url, env.as('alice'), fresh, 'c-100');
    assert.equal((await postJson(env.url, env.as('alice'), toolCall('get_customer', {}), idle1)).status, 404);
    await ownCall(env.url, env.as('alice'), streaming, 'c-100');
    await ownCall(env.url, env.as('alice'), idle2, 'c-100');
    assert.equal(stream.isEnded, false);

    const evicted = await sessionRecords(env.fx, (r) => (r.outcome ?? '').includes('evicted'));
    assert.deepEqual(
      evicted.map((r) => [r.outcome, r.userSubject, r.sessionFingerprint]),
      [['ended: evicted: user session quota (3)', 'alice', fingerprint(idle1)]],
    );
    // Nothing of hers is idle now: the next one is refused, and told when one may be.
    assertRefused(await postJson(env.url, env.as('alice'), INITIALIZE), 429, /Session quota exceeded/);
  });
});

describe('session quotas: the gateway-wide cap', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup({ maxSessions: 3, maxPerUser: 2, evictIdleAfterSeconds: 3600 });
  });
  after(async () => {
    await env?.fx.close();
    await env?.crm.close();
  });

  it('is a 503 with Retry-After (never 502), audited; a slot freed is usable again', async () => {
    await openSession(env.url, env.as('alice'));
    await openSession(env.url, env.as('alice'));
    const bob = await openSession(env.url, env.as('bob'));
    const full = await postJson(env.url, env.as('carol'), INITIALIZE);
    assertRefused(full, 503, /^Gateway at its session limit/);
    const [record] = await sessionRecords(env.fx, (r) => r.outcome === 'refused: too_many_sessions');
    assert.equal(record?.userSubject, 'carol');
    assert.equal(record.refusedBy, 'handle_post');
    assert.equal((await deleteSession(env.url, env.as('bob'), bob)).status, 200);
    const carol = await openSession(env.url, env.as('carol'));
    rpcResult(await postJson(env.url, env.as('carol'), toolCall('list_customers', {}), carol));
  });
});
