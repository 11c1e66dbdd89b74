/**
 * OpenTelemetry traces (issue 17) through the real gateway, dev IdP and a
 * canary HTTP upstream, exported over OTLP/HTTP to a real receiver started
 * here: one server span per request, a child per HTTP step and per message,
 * the message's steps under it, an inbound `traceparent` honoured, and the
 * upstream receiving a `traceparent` that names the gateway's forward span.
 * No token, key, session id or argument value is exported.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startCanaryUpstream, type CanaryUpstream } from './helpers/canary-upstream.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receiver.js';
import { openSession, postJson, rpcResult, toolCall } from './helpers/raw-http.js';
import { META_ECHO_STDIO } from './helpers/meta-echo-server.js';

const SERVER = 2;
const CLIENT = 3;
const POLICY = [{ id: 'echo-for-all', effect: 'allow', upstreams: ['up', 'st'], tools: ['echo', 'echo_meta'] }];

function one(spans: ReceivedSpan[], name: string, parent?: ReceivedSpan): ReceivedSpan {
  const found = spans.filter((s) => s.name === name && (!parent || s.parentSpanId === parent.spanId));
  assert.equal(
    found.length,
    1,
    `one ${name} span${parent ? ` under ${parent.name}` : ''}: ${spans.map((s) => s.name)}`,
  );
  return found[0]!;
}

describe('traces across gateway → HTTP upstream, exported to an OTLP receiver', () => {
  let receiver: OtlpReceiver;
  let canary: CanaryUpstream;
  let fx: Fixture;
  let url: string;
  let headers: Record<string, string>;
  let session: string;

  before(async () => {
    receiver = await startOtlpReceiver();
    canary = await startCanaryUpstream();
    fx = await startFixture({
      upstreams: { up: { transport: 'streamable-http', url: canary.url }, st: META_ECHO_STDIO },
      policy: POLICY,
      operations: { tracing: { endpoint: receiver.url, sampleRatio: 1, serviceName: 'behalf-test' } },
    });
    url = fx.gateway.urlFor('up');
    headers = await fx.headersFor('alice', { upstream: 'up' });
    session = await openSession(url, headers);
  });
  after(async () => {
    await fx?.close();
    await canary?.close();
    await receiver?.close();
  });

  it('continues an inbound trace: server span, steps, message, forward, and the upstream names the forward span', async () => {
    const traceId = randomBytes(16).toString('hex');
    const inboundParent = randomBytes(8).toString('hex');
    const text = `argument-value-${randomBytes(4).toString('hex')}`;
    const traced = { ...headers, traceparent: `00-${traceId}-${inboundParent}-01`, tracestate: 'vendor=opaque' };
    rpcResult(await postJson(url, traced, toolCall('echo', { text }), session));

    const spans = await receiver.waitFor(traceId, 8);
    const server = one(spans, 'POST /mcp/up');
    assert.equal(server.kind, SERVER);
    assert.equal(server.parentSpanId, inboundParent, 'the inbound traceparent is the server span parent');
    assert.equal(server.attributes['http.request.method'], 'POST');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.resource['service.name'], 'behalf-test');
    one(spans, 'authenticate', server);
    const message = one(spans, 'tools/call', server);
    assert.equal(message.attributes['mcp.method.name'], 'tools/call');
    assert.equal(message.attributes['gen_ai.tool.name'], 'echo');
    assert.equal(message.attributes['behalf.decision'], 'allow');
    for (const step of ['resolve_user', 'authorize', 'rate_limit', 'record_decision', 'record_outcome'])
      one(spans, step, message);
    const forward = one(spans, 'forward', message);
    assert.equal(forward.kind, CLIENT);

    const upstreamCall = canary.calls.find((c) => c.args.text === text);
    assert.ok(upstreamCall, 'the call reached the upstream');
    assert.equal(upstreamCall.headers.traceparent, `00-${traceId}-${forward.spanId}-01`);
    assert.equal(upstreamCall.headers.tracestate, 'vendor=opaque');

    const exported = receiver.bodies.join('\n');
    assert.ok(exported.includes(traceId), 'control: the grep sees the export');
    for (const secret of [fx.apiKey, headers.authorization!.slice(7), session, text])
      assert.ok(!exported.includes(secret), 'a secret or an argument value was exported');
  });

  it('starts a trace of its own without an inbound traceparent, and marks a refusal', async () => {
    const before = new Set(receiver.spans.map((s) => s.traceId));
    const r = await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), session);
    assert.equal((r.json as { error?: { code: number } }).error?.code, -32003);
    const deadline = Date.now() + 10_000;
    let fresh: ReceivedSpan[] = [];
    while (Date.now() < deadline) {
      fresh = receiver.spans.filter((s) => !before.has(s.traceId) && s.name === 'tools/call');
      if (fresh.length) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(fresh.length, 1);
    const message = fresh[0]!;
    assert.equal(message.attributes['behalf.decision'], 'deny');
    assert.equal(message.attributes['error.type'], 'forbidden');
    const server = receiver.spans.find((s) => s.spanId === message.parentSpanId);
    assert.ok(server, 'its server span arrived');
    assert.equal(server.parentSpanId, undefined, 'a root span');
  });

  it("gives a stdio upstream the forward span as parent in params._meta, next to the client's own _meta", async () => {
    const st = fx.gateway.urlFor('st');
    const stHeaders = await fx.headersFor('alice', { upstream: 'st' });
    const stSession = await openSession(st, stHeaders);
    const traceId = randomBytes(16).toString('hex');
    const traced = { ...stHeaders, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
    const body = { ...toolCall('echo_meta'), params: { name: 'echo_meta', arguments: {}, _meta: { mine: 'kept' } } };
    const result = rpcResult(await postJson(st, traced, body, stSession)) as { content: { text: string }[] };
    const meta = JSON.parse(result.content[0]!.text) as Record<string, unknown>;
    const spans = await receiver.waitFor(traceId, 5);
    const forward = spans.find((s) => s.name === 'forward')!;
    assert.ok(forward, 'a forward span');
    assert.equal(meta.traceparent, `00-${traceId}-${forward.spanId}-01`);
    assert.equal(meta.mine, 'kept', "the client's own _meta is forwarded as it was");
  });
});
