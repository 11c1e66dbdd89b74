/**
 * Nothing lost in the hop, nothing reordered: an upstream that sends a tight
 * burst of notifications (progress and logging, interleaved) before its
 * result must have every one of them reach the client, in order, before the
 * result — on every pair of client transport (POST answered as SSE; POST
 * answered as JSON with the session's GET stream; legacy SSE) and upstream
 * transport (stdio, Streamable HTTP, legacy SSE). Twenty runs per pair.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson } from './helpers/raw-http.js';
import { RAW_SERVER_STDIO } from './helpers/raw-mcp-server.js';
import { startRawHttpServer, type RawHttpServer } from './helpers/raw-mcp-http.js';
import { openStream, type SseEvent } from './helpers/sse-client.js';

const RUNS = 20;
const BURST = 50;
const UPSTREAMS = ['raw-stdio', 'raw-http', 'raw-sse'] as const;

function burstCall(id: number): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'burst', arguments: { count: BURST }, _meta: { progressToken: `p-${id}` } },
  };
}

/** Every progress (1..BURST) and every log line (1..BURST) of call `id`, each kind in order, then its result. */
function assertBurstThenResult(events: SseEvent[], id: number, resultLast: boolean): void {
  const msgs = events.map((e) => e.json).filter((j): j is Record<string, unknown> => j !== undefined);
  const progress = msgs
    .filter((m) => m.method === 'notifications/progress')
    .map((m) => m.params as { progressToken: string; progress: number })
    .filter((p) => p.progressToken === `p-${id}`)
    .map((p) => p.progress);
  const logs = msgs
    .filter((m) => m.method === 'notifications/message')
    .map((m) => (m.params as { data: string }).data)
    .filter((d) => d.startsWith('burst '));
  const expected = Array.from({ length: BURST }, (_, i) => i + 1);
  assert.deepEqual(progress, expected, 'every progress notification, in order');
  assert.deepEqual(
    logs,
    expected.map((i) => `burst ${i}`),
    'every log message, in order',
  );
  if (!resultLast) return;
  const resultAt = msgs.findIndex((m) => m.id === id && 'result' in m);
  assert.ok(resultAt >= 0, 'the result arrives on the same stream');
  const lastNotification = msgs.findLastIndex((m) => typeof m.method === 'string' && m.method.startsWith('notif'));
  assert.ok(lastNotification < resultAt, 'every notification arrives before the result');
}

describe('a burst of notifications before a result: none lost, order kept, on every transport pair', () => {
  let raw: RawHttpServer;
  let fx: Fixture;
  let nextId = 1000;

  before(async () => {
    raw = await startRawHttpServer();
    fx = await startFixture({
      upstreams: {
        'raw-stdio': RAW_SERVER_STDIO,
        'raw-http': { transport: 'streamable-http', url: raw.url },
        'raw-sse': { transport: 'sse', url: raw.sseUrl },
      },
      policy: [{ id: 'burst', effect: 'allow', upstreams: ['raw-*'], tools: ['burst'] }],
    });
  });
  after(async () => {
    await fx?.close();
    await raw?.close();
  });

  /** A Streamable session of alice's on `upstream`, with its GET stream open when asked for. */
  async function session(upstream: string, withGetStream: boolean) {
    const url = fx.gateway.urlFor(upstream);
    const headers = await fx.headersFor('alice', { upstream });
    const sid = await openSession(url, headers);
    const get = withGetStream
      ? await openStream(url, { headers: { ...headers, 'mcp-session-id': sid, accept: 'text/event-stream' } })
      : undefined;
    if (get) assert.equal(get.status, 200);
    return { url, headers, sid, get };
  }

  /** RUNS bursts, each POSTed accepting SSE: every notification on the call's own stream, before its result. */
  async function burstsOnPostStreams(s: { url: string; headers: Record<string, string>; sid: string }) {
    for (let run = 0; run < RUNS; run++) {
      const id = nextId++;
      const post = await openStream(s.url, {
        headers: { ...s.headers, 'mcp-session-id': s.sid, accept: 'application/json, text/event-stream' },
        body: burstCall(id),
      });
      await post.ended;
      assert.equal(post.status, 200);
      assertBurstThenResult(post.events, id, true);
    }
  }

  for (const upstream of UPSTREAMS) {
    it(`${upstream}: POST answered as an SSE stream`, async () => {
      await burstsOnPostStreams(await session(upstream, false));
    });

    it(`${upstream}: POST answered as an SSE stream while the session's GET stream is open`, async () => {
      const s = await session(upstream, true);
      try {
        // Messages about the call travel with its response, not on the GET stream, so they cannot fall behind it.
        await burstsOnPostStreams(s);
      } finally {
        s.get!.close();
      }
    });

    it(`${upstream}: POST answered as JSON, notifications on the session's GET stream`, async () => {
      const { url, headers, sid, get } = await session(upstream, true);
      try {
        for (let run = 0; run < RUNS; run++) {
          const id = nextId++;
          const before = get!.events.length;
          const r = await postJson(url, headers, burstCall(id), sid);
          assert.equal(r.status, 200, r.text);
          assert.equal((r.json as { id: number }).id, id);
          // Written to the GET stream before the response was: at most one turn of the event loop behind it.
          await new Promise((resolve) => setImmediate(resolve));
          assertBurstThenResult(get!.events.slice(before), id, false);
        }
      } finally {
        get!.close();
      }
    });

    it(`${upstream}: legacy SSE client (2024-11-05)`, async () => {
      const route = fx.gateway.urlFor(upstream);
      const headers = await fx.headersFor('alice', { upstream });
      const stream = await openStream(`${route}/sse`, { headers: { ...headers, accept: 'text/event-stream' } });
      try {
        const endpoint = await stream.waitFor((e) => e.event === 'endpoint');
        const post = (body: unknown) => postJson(new URL(endpoint.data, route).href, headers, body);
        const init = await post({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '0' } },
        });
        assert.equal(init.status, 202);
        await stream.waitFor((e) => e.json?.id === 1);
        await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
        for (let run = 0; run < RUNS; run++) {
          const id = nextId++;
          const before = stream.events.length;
          assert.equal((await post(burstCall(id))).status, 202);
          await stream.waitFor((e) => e.json?.id === id);
          assertBurstThenResult(stream.events.slice(before), id, true);
        }
      } finally {
        stream.close();
      }
    });
  }
});
