/**
 * Resumability through the gateway (2025-11-25 Streamable HTTP): a POST's
 * SSE stream carries event ids from a priming event on; a client whose
 * stream broke resumes it with GET + Last-Event-ID and gets what it missed,
 * response included; an upstream that ends its stream mid-call (SSE polling)
 * has the client's stream paused likewise and resumed the same way. Only
 * the session's own principal can resume; an id the session does not hold is
 * refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession } from './helpers/raw-http.js';
import { startRawHttpServer, type RawHttpServer } from './helpers/raw-mcp-http.js';
import { openStream, type SseEvent } from './helpers/sse-client.js';

const ROUTE = 'raw-http';

function call(id: number, name: string, args: Record<string, unknown>, progress = false): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, ...(progress ? { _meta: { progressToken: `p-${id}` } } : {}) },
  };
}

const isResultOf = (id: number) => (e: SseEvent) => e.json?.id === id && 'result' in e.json;

describe('resuming a stream with Last-Event-ID through the gateway', () => {
  let raw: RawHttpServer;
  let fx: Fixture;
  let url: string;
  let alice: Record<string, string>;

  before(async () => {
    raw = await startRawHttpServer();
    fx = await startFixture({
      upstreams: { [ROUTE]: { transport: 'streamable-http', url: raw.url } },
      policy: [{ id: 'raw', effect: 'allow', upstreams: [ROUTE], tools: ['sleep', 'poll'] }],
    });
    url = fx.gateway.urlFor(ROUTE);
    alice = await fx.headersFor('alice', { upstream: ROUTE });
  });
  after(async () => {
    await fx?.close();
    await raw?.close();
  });

  const sse = { accept: 'application/json, text/event-stream' };

  it('a client that drops a POST stream mid-call resumes it and gets the response', async () => {
    const sid = await openSession(url, alice);
    const post = await openStream(url, {
      headers: { ...alice, ...sse, 'mcp-session-id': sid },
      body: call(1, 'sleep', { ms: 400 }, true),
    });
    const progress = await post.waitFor((e) => e.json?.method === 'notifications/progress');
    assert.equal(post.events[0]?.data, '', 'a priming event (an id, no data) comes first');
    assert.ok(post.events[0]?.id && post.retries.length === 1, 'the priming event says when to come back');
    assert.ok(progress.id, 'messages carry event ids');
    post.close();
    const resumed = await openStream(url, {
      headers: { ...alice, accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': progress.id },
    });
    assert.equal(resumed.status, 200);
    const result = await resumed.waitFor(isResultOf(1));
    assert.deepEqual((result.json!.result as { content: unknown }).content, [{ type: 'text', text: 'slept 400' }]);
    assert.equal(
      resumed.events.filter((e) => e.json?.method === 'notifications/progress').length,
      0,
      'nothing replayed twice',
    );
    await resumed.ended;
  });

  it('after the call is answered, resuming replays the response and ends', async () => {
    const sid = await openSession(url, alice);
    const post = await openStream(url, {
      headers: { ...alice, ...sse, 'mcp-session-id': sid },
      body: call(2, 'sleep', { ms: 100 }, true),
    });
    const priming = await post.waitFor((e) => e.data === '' && e.id !== undefined);
    await post.ended;
    const resumed = await openStream(url, {
      headers: { ...alice, accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': priming.id! },
    });
    await resumed.ended;
    assert.ok(resumed.events.some(isResultOf(2)), 'the response is replayed');
    assert.ok(
      resumed.events.some((e) => e.json?.method === 'notifications/progress'),
      'so is the progress',
    );
  });

  it('an upstream that ends its stream mid-call (SSE polling): the client stream pauses, then resumes to the answer', async () => {
    const sid = await openSession(url, alice);
    const post = await openStream(url, {
      headers: { ...alice, ...sse, 'mcp-session-id': sid },
      body: call(3, 'poll', { ms: 300 }),
    });
    await post.ended;
    assert.equal(post.status, 200);
    assert.equal(post.events.some(isResultOf(3)), false, 'the stream ended before the answer, as the upstream did');
    const last = post.events.findLast((e) => e.id !== undefined);
    assert.ok(last?.id, 'with an event id to resume from');
    assert.ok(post.retries.length > 0, 'and a retry interval');
    const resumed = await openStream(url, {
      headers: { ...alice, accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': last.id },
    });
    const result = await resumed.waitFor(isResultOf(3), 10_000);
    assert.deepEqual((result.json!.result as { content: unknown }).content, [
      { type: 'text', text: 'polled after 300' },
    ]);
  });

  it("only the session's own principal resumes: bob with alice's session and event id is refused (positive control: alice)", async () => {
    const sid = await openSession(url, alice);
    const post = await openStream(url, {
      headers: { ...alice, ...sse, 'mcp-session-id': sid },
      body: call(4, 'sleep', { ms: 50 }, true),
    });
    const priming = await post.waitFor((e) => e.data === '' && e.id !== undefined);
    await post.ended;
    const bob = await fx.headersFor('bob', { upstream: ROUTE });
    const resumeAs = (h: Record<string, string>) =>
      openStream(url, {
        headers: { ...h, accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': priming.id! },
      });
    const asBob = await resumeAs(bob);
    assert.equal(asBob.status, 404, 'bob is told the session does not exist, as for any session not his');
    assert.doesNotMatch(await asBob.text(), /slept|result/);
    const asAlice = await resumeAs(alice);
    await asAlice.ended;
    assert.equal(asAlice.status, 200);
    assert.ok(asAlice.events.some(isResultOf(4)));
  });

  it('an event id the session does not hold is refused with 400, and the session goes on', async () => {
    const sid = await openSession(url, alice);
    for (const bogus of ['nope', 'AAAAAAAAAAAA.1', `${'x'.repeat(5000)}`]) {
      const r = await openStream(url, {
        headers: { ...alice, accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': bogus },
      });
      assert.equal(r.status, 400);
      assert.match(await r.text(), /Last-Event-ID/);
    }
    const post = await openStream(url, {
      headers: { ...alice, ...sse, 'mcp-session-id': sid },
      body: call(5, 'sleep', { ms: 1 }),
    });
    assert.equal(post.status, 200);
    assert.match(await post.text(), /slept 1/);
  });
});
