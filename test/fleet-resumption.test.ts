/**
 * Resuming a stream with Last-Event-ID on another instance of a fleet
 * (docs/architecture.md §11): the session's event log is in Redis, so any
 * instance replays what the client missed — only to the session's own
 * principal, never another session's events — and a call still running on
 * the instance that carries it is polled for (retry), not guessed at. Three
 * gateway processes, real Redis, the raw test server as a Streamable HTTP
 * upstream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { SessionEventLog } from '../src/gateway/event-log.js';
import { sha256Hex } from '../src/shared/hash.js';
import { SharedEventLogs } from '../src/state/shared-event-logs.js';
import { SharedRedis } from '../src/state/shared-redis.js';
import { startFleet, type Fleet, type FleetInstance } from './helpers/fleet.js';
import { openSession, rawRequest } from './helpers/raw-http.js';
import { startRawHttpServer, type RawHttpServer } from './helpers/raw-mcp-http.js';
import { dropPrefix, REDIS_URL, testPrefix } from './helpers/redis-test.js';
import { openStream, type SseEvent } from './helpers/sse-client.js';

const call = (id: number, ms: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'sleep', arguments: { ms }, _meta: { progressToken: `p-${id}` } },
});
const isResultOf = (id: number) => (e: SseEvent) => e.json?.id === id && 'result' in e.json;
const isProgress = (e: SseEvent) => e.json?.method === 'notifications/progress';
const rawRoute = (i: FleetInstance) => i.url.replace(/\/mcp\/crm$/, '/mcp/raw');
const SSE = { accept: 'application/json, text/event-stream' };

describe('a fleet of three: a stream resumed with Last-Event-ID on another instance', () => {
  const prefix = testPrefix();
  let raw: RawHttpServer;
  let fleet: Fleet;
  let one: FleetInstance, two: FleetInstance, three: FleetInstance;
  let alice: Record<string, string>;

  before(async () => {
    raw = await startRawHttpServer();
    fleet = await startFleet({
      size: 3,
      prefix,
      policy: { rules: [{ id: 'raw', effect: 'allow', upstreams: ['raw'], tools: ['sleep'] }] },
      upstreams: { raw: { transport: 'streamable-http', url: raw.url, inbound: ['token'] } },
    });
    [one, two, three] = fleet.instances as [FleetInstance, FleetInstance, FleetInstance];
    alice = await asUser('alice');
  });
  after(async () => {
    await fleet?.close();
    await raw?.close();
    await dropPrefix(prefix);
  });

  const asUser = async (user: string) => ({
    'x-api-key': fleet.keys.main,
    authorization: `Bearer ${await fleet.tokenFor(user, fleet.resource.replace(/crm$/, 'raw'))}`,
  });
  const resume = (i: FleetInstance, headers: Record<string, string>, sid: string, lastEventId: string) =>
    openStream(rawRoute(i), {
      headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': lastEventId },
    });
  /** A POST stream on `i` whose client drops it after the first progress event: the id it resumes from. */
  async function dropAfterProgress(i: FleetInstance, sid: string, id: number, ms: number): Promise<string> {
    const post = await openStream(rawRoute(i), {
      headers: { ...alice, ...SSE, 'mcp-session-id': sid },
      body: call(id, ms),
    });
    const progress = await post.waitFor(isProgress);
    post.close();
    return progress.id!;
  }

  it('a call answered on instance 1 while its client was away is replayed by instance 2, once, and the stream ends', async () => {
    const sid = await openSession(rawRoute(one), alice);
    const from = await dropAfterProgress(one, sid, 1, 300);
    await new Promise((r) => setTimeout(r, 600));
    const resumed = await resume(two, alice, sid, from);
    assert.equal(resumed.status, 200);
    await resumed.ended;
    assert.equal(resumed.events.filter(isResultOf(1)).length, 1, 'the response, replayed from the fleet');
    assert.equal(resumed.events.filter(isProgress).length, 0, 'nothing the client had seen is sent twice');
    assert.deepEqual(resumed.retries, [], 'the call is over: no polling');
  });

  it('mid-call, another instance replays what there is and tells the client to poll; it gets the answer once', async () => {
    const sid = await openSession(rawRoute(one), alice);
    let last = await dropAfterProgress(one, sid, 2, 800);
    const seen: SseEvent[] = [];
    let polls = 0;
    for (const i of [two, three, two, three, two, three, two, three, two, three]) {
      const r = await resume(i, alice, sid, last);
      assert.equal(r.status, 200, `${i.id}`);
      await r.ended;
      polls++;
      seen.push(...r.events);
      last = r.events.findLast((e) => e.id !== undefined)?.id ?? last;
      if (r.events.some(isResultOf(2))) break;
      assert.ok(r.retries.length > 0, `${i.id}: a call still running elsewhere ends the stream with a retry interval`);
      await new Promise((res) => setTimeout(res, r.retries[0]));
    }
    assert.ok(polls > 1, 'the first resumption came while instance 1 still ran the call');
    assert.equal(seen.filter(isResultOf(2)).length, 1, 'the answer arrives, once');
    const ids = seen.filter((e) => e.id && e.data !== '').map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
  });

  it('only alice resumes her stream on another instance: bob with her session and event id is 404 (positive control: alice)', async () => {
    const sid = await openSession(rawRoute(one), alice);
    const from = await dropAfterProgress(one, sid, 3, 50);
    await new Promise((r) => setTimeout(r, 300));
    const asBob = await resume(three, await asUser('bob'), sid, from);
    assert.equal(asBob.status, 404);
    assert.doesNotMatch(await asBob.text(), /slept/);
    const asAlice = await resume(three, alice, sid, from);
    await asAlice.ended;
    assert.ok(asAlice.events.some(isResultOf(3)));
  });

  it("an event id of another session is refused (400) on every instance: never that session's events", async () => {
    const mine = await openSession(rawRoute(one), alice);
    const other = await openSession(rawRoute(one), alice);
    const from = await dropAfterProgress(one, mine, 4, 50);
    await new Promise((r) => setTimeout(r, 300));
    for (const i of [one, two, three]) {
      const r = await resume(i, alice, other, from);
      assert.equal(r.status, 400, `${i.id}`);
      assert.match(await r.text(), /Last-Event-ID/);
    }
    // Positive control: the session the id belongs to.
    const ok = await resume(two, alice, mine, from);
    await ok.ended;
    assert.ok(ok.events.some(isResultOf(4)));
  });

  it("DELETE ends the session's log with it: nothing is left in Redis to replay", async () => {
    const sid = await openSession(rawRoute(one), alice);
    await dropAfterProgress(two, sid, 5, 50);
    const r = new Redis(REDIS_URL);
    try {
      const keys = ['events', 'event-bytes'].map((k) => `${prefix}${k}:${sha256Hex(sid)}`);
      assert.equal(await r.exists(...keys), 2, 'the log was in Redis');
      const del = await rawRequest(rawRoute(three), { method: 'DELETE', headers: { ...alice, 'mcp-session-id': sid } });
      assert.equal(del.status, 200);
      assert.equal(await r.exists(...keys), 0);
    } finally {
      r.disconnect();
    }
  });
});

describe("the fleet's event log in Redis: bounds, expiry and a carrier that is gone", () => {
  const prefix = testPrefix();
  let redis: SharedRedis;
  before(async () => {
    redis = new SharedRedis(REDIS_URL, { keyPrefix: prefix, commandTimeoutMs: 1000, url: 'env:UNUSED' }, () => {});
    assert.ok(await redis.ready(5000));
  });
  after(async () => {
    redis?.close();
    await dropPrefix(prefix);
  });

  it('holds at most maxEvents entries and maxBytes bytes, oldest dropped first, with the idle TTL', async () => {
    const logs = new SharedEventLogs(redis, { maxEvents: 5, maxBytes: 400, ttlMs: 60_000 });
    for (let n = 1; n <= 8; n++) await logs.append('s-count', { id: `x.s1.${n}`, stream: 'x.s1', data: 'd', at: 1 });
    assert.deepEqual(
      (await logs.read('s-count')).map((e) => e.id),
      ['x.s1.4', 'x.s1.5', 'x.s1.6', 'x.s1.7', 'x.s1.8'],
    );
    for (let n = 1; n <= 4; n++)
      await logs.append('s-bytes', { id: `x.s1.${n}`, stream: 'x.s1', data: 'y'.repeat(150), at: 1 });
    assert.deepEqual(
      (await logs.read('s-bytes')).map((e) => e.id),
      ['x.s1.3', 'x.s1.4'],
    );
    const ttl = await redis.commands.pttl(logs.keys('s-bytes')[0]);
    assert.ok(ttl > 50_000 && ttl <= 60_000, `${ttl}`);
  });

  it("a call's stream with no end mark is carried elsewhere, unless older than a call can last (its instance is gone)", async () => {
    const logs = new SharedEventLogs(redis, { maxEvents: 50, maxBytes: 100_000, ttlMs: 60_000 });
    const mirrorOf = (sid: string) => ({ tag: 'reader', append() {}, read: () => logs.read(sid) });
    const write = async (sid: string, at: number, end: boolean) => {
      await logs.append(sid, { id: 'w.s1.1', stream: 'w.s1', data: '', at });
      if (end) await logs.append(sid, { stream: 'w.s1', end: true, at });
    };
    await write('fresh', Date.now(), false);
    await write('stale', Date.now() - 60_000, false);
    await write('ended', Date.now(), true);
    const resumeIn = (sid: string) => new SessionEventLog(10, 1000, mirrorOf(sid)).resume('w.s1.1', 30_000);
    assert.equal((await resumeIn('fresh'))?.carriedElsewhere, true);
    assert.equal((await resumeIn('stale'))?.carriedElsewhere, false);
    assert.equal((await resumeIn('ended'))?.carriedElsewhere, false);
    assert.equal(await resumeIn('nothing'), undefined);
  });
});
