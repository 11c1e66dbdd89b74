/**
 * Bad input (docs/architecture.md §2 steps 1, 2 and 4, and §3 step 3): every malformed, oversized, foreign
 * or unknown request gets a specific, non-leaky refusal, nothing of it
 * reaches the upstream (an HTTP CRM whose canary sees every request), and the
 * gateway keeps serving: each refusal is followed by a call that succeeds.
 * A crashed and a hanging upstream end in a JSON-RPC error, not a hang.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import {
  assertNoLeak,
  openSession,
  postJson,
  slowBodyRequest,
  rawRequest,
  rpc,
  rpcError,
  rpcResult,
  toolCall,
  type RawResponse,
} from './helpers/raw-http.js';
import { RAW_SERVER_STDIO, RAW_TOOLS } from './helpers/raw-mcp-server.js';

const MAX_BODY = 8192;
const BODY_TIMEOUT_MS = 1000;
const SLOW_TIMEOUT_MS = 2500;
const ALLOWED_ORIGIN = 'http://app.example';
const DENIED = 'Forbidden: not allowed for this user';

describe('bad input is refused specifically, forwarded nowhere, and the gateway keeps serving', () => {
  let crm: CrmHttpServer;
  const seen: CrmRequestInfo[] = [];
  let fx: Fixture;
  let url: string;
  let alice: Record<string, string>;
  let sessionId: string;
  let secrets: string[];

  /** Requests that carry JSON-RPC to the upstream (its GET stream and DELETEs are not messages). */
  const upstreamPosts = () => seen.filter((r) => r.method === 'POST').length;

  before(async () => {
    crm = await startCrmHttp({ onRequest: (info) => seen.push(info) });
    fx = await startFixture({
      upstreams: {
        crm: { transport: 'streamable-http', url: crm.url },
        raw: RAW_SERVER_STDIO,
        slow: { ...RAW_SERVER_STDIO, requestTimeoutMs: SLOW_TIMEOUT_MS },
      },
      policy: [
        ...DEMO_POLICY,
        { id: 'test-server-tools', effect: 'allow', upstreams: ['raw', 'slow'], tools: [...RAW_TOOLS] },
      ],
      server: { maxBodyBytes: MAX_BODY, bodyTimeoutMs: BODY_TIMEOUT_MS, allowedOrigins: [ALLOWED_ORIGIN] },
    });
    url = fx.gateway.urlFor('crm');
    alice = await fx.headersFor('alice');
    sessionId = await openSession(url, alice);
    secrets = [fx.apiKey, fx.otherApiKey, alice.authorization!.slice('Bearer '.length), sessionId];
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  /** alice reads her own customer on the shared session: exactly one more message reaches the CRM. */
  async function positiveControl(): Promise<void> {
    const before = upstreamPosts();
    const r = await postJson(url, alice, toolCall('get_customer', { customer_id: 'c-100' }), sessionId);
    const result = rpcResult(r) as { structuredContent?: { owner?: string } };
    assert.equal(result.structuredContent?.owner, 'alice');
    assert.equal(upstreamPosts(), before + 1, 'the positive control reached the upstream once');
  }

  interface Refusal {
    name: string;
    send: () => Promise<RawResponse>;
    status: number;
    code: number;
    message: string;
    headers?: Record<string, string>;
    /** The request id the error answers, once the body was parsed. */
    id?: number;
    data?: unknown;
  }

  const post =
    (body: unknown, headers: Record<string, string> = {}) =>
    () =>
      postJson(url, { ...alice, ...headers }, body, sessionId);
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
  const oversized = JSON.stringify(toolCall('get_customer', { customer_id: 'c-100', pad: 'x'.repeat(MAX_BODY) }));
  const rawPost =
    (o: { headers?: Record<string, string>; body?: string; chunked?: boolean; method?: string; path?: string }) => () =>
      rawRequest(o.path ? `${fx.gateway.baseUrl}${o.path}` : url, {
        method: o.method ?? 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...alice,
          'mcp-session-id': sessionId,
          ...o.headers,
        },
        body: o.body,
        chunked: o.chunked,
      });

  const invalid = (why: string) => `Invalid JSON-RPC request: ${why}`;
  const HTTP_REFUSALS: Refusal[] = [
    {
      name: 'malformed JSON',
      send: post('{"jsonrpc":"2.0","id":1,"method":"tools/call",'),
      status: 400,
      code: -32700,
      message: 'Parse error: body is not valid JSON',
    },
    {
      name: 'an empty body',
      send: post(''),
      status: 400,
      code: -32700,
      message: 'Parse error: body is not valid JSON',
    },
    {
      name: 'wrong jsonrpc version',
      send: post({ jsonrpc: '1.0', id: 1, method: 'ping' }),
      status: 400,
      code: -32600,
      message: invalid('jsonrpc must be "2.0"'),
    },
    {
      name: 'no jsonrpc member',
      send: post({ id: 1, method: 'ping' }),
      status: 400,
      code: -32600,
      message: invalid('jsonrpc must be "2.0"'),
    },
    {
      name: 'missing method (neither request nor response)',
      send: post({ jsonrpc: '2.0', id: 1, params: {} }),
      status: 400,
      code: -32600,
      message: invalid('a response has exactly one of result and error'),
    },
    {
      name: 'empty method',
      send: post({ jsonrpc: '2.0', id: 1, method: '' }),
      status: 400,
      code: -32600,
      message: invalid('method must be a non-empty string'),
    },
    {
      name: 'method not a string',
      send: post({ jsonrpc: '2.0', id: 1, method: 42 }),
      status: 400,
      code: -32600,
      message: invalid('method must be a non-empty string'),
    },
    {
      name: 'params as an array',
      send: post({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: [] }),
      status: 400,
      code: -32600,
      message: invalid('params must be an object'),
    },
    {
      name: 'id as an object',
      send: post({ jsonrpc: '2.0', id: {}, method: 'ping' }),
      status: 400,
      code: -32600,
      message: invalid('id must be a string or a number'),
    },
    {
      name: 'a request with id null',
      send: post({ jsonrpc: '2.0', id: null, method: 'ping' }),
      status: 400,
      code: -32600,
      message: invalid('id must be a string or a number'),
    },
    {
      name: 'a JSON number',
      send: post('42'),
      status: 400,
      code: -32600,
      message: invalid('message must be an object'),
    },
    { name: 'JSON null', send: post('null'), status: 400, code: -32600, message: invalid('message must be an object') },
    {
      name: 'a request carrying a result',
      send: post({ jsonrpc: '2.0', id: 1, method: 'ping', result: {} }),
      status: 400,
      code: -32600,
      message: invalid('a request cannot carry result or error'),
    },
    { name: 'an empty batch', send: post([]), status: 400, code: -32600, message: invalid('empty batch') },
    {
      name: 'a batch of 101',
      send: post(Array.from({ length: 101 }, (_, i) => ({ ...ping, id: i }))),
      status: 400,
      code: -32600,
      message: invalid('batch too large'),
    },
    {
      name: 'a batch with one bad member',
      send: post([ping, { jsonrpc: '2.0', id: 2, method: 'ping', params: 'x' }]),
      status: 400,
      code: -32600,
      message: invalid('params must be an object'),
    },
    {
      name: 'an oversized body with an honest Content-Length',
      send: rawPost({ body: oversized }),
      status: 413,
      code: -32600,
      message: 'Request body too large',
    },
    {
      name: 'an oversized chunked body (no Content-Length)',
      send: rawPost({ body: oversized, chunked: true }),
      status: 413,
      code: -32600,
      message: 'Request body too large',
    },
    {
      name: 'Content-Type text/plain',
      send: rawPost({ body: JSON.stringify(ping), headers: { 'content-type': 'text/plain' } }),
      status: 415,
      code: -32000,
      message: 'Content-Type must be application/json',
    },
    {
      name: 'Content-Type application/jsonp',
      send: rawPost({ body: JSON.stringify(ping), headers: { 'content-type': 'application/jsonp' } }),
      status: 415,
      code: -32000,
      message: 'Content-Type must be application/json',
    },
    {
      name: 'no Content-Type',
      send: rawPost({ body: JSON.stringify(ping), headers: { 'content-type': '' } }),
      status: 415,
      code: -32000,
      message: 'Content-Type must be application/json',
    },
    {
      name: 'Accept: text/html',
      send: rawPost({ body: JSON.stringify(ping), headers: { accept: 'text/html' } }),
      status: 406,
      code: -32000,
      message: 'Accept must include application/json and text/event-stream',
    },
    {
      name: 'an unknown upstream /mcp/nope',
      send: rawPost({ path: '/mcp/nope', body: JSON.stringify(ping) }),
      status: 404,
      code: -32000,
      message: 'No MCP server at this path',
    },
    {
      name: 'an unknown path /x',
      send: rawPost({ path: '/x', method: 'GET' }),
      status: 404,
      code: -32000,
      message: 'No MCP server at this path',
    },
    {
      name: 'a path below the endpoint /mcp/crm/x',
      send: rawPost({ path: '/mcp/crm/x', body: JSON.stringify(ping) }),
      status: 404,
      code: -32000,
      message: 'No MCP server at this path',
    },
    {
      name: 'PUT on the MCP endpoint',
      send: rawPost({ method: 'PUT', body: JSON.stringify(ping) }),
      status: 405,
      code: -32000,
      message: 'HTTP method not allowed here',
      headers: { allow: 'GET, POST, DELETE' },
    },
    {
      name: 'POST on the legacy stream',
      send: rawPost({ path: '/mcp/crm/sse', body: JSON.stringify(ping) }),
      status: 405,
      code: -32000,
      message: 'HTTP method not allowed here',
      headers: { allow: 'GET' },
    },
    {
      name: 'GET on the legacy messages endpoint',
      send: rawPost({ path: '/mcp/crm/messages', method: 'GET' }),
      status: 405,
      code: -32000,
      message: 'HTTP method not allowed here',
      headers: { allow: 'POST' },
    },
    {
      name: 'POST on the metadata document',
      send: rawPost({ path: '/.well-known/oauth-protected-resource/mcp/crm', body: '{}' }),
      status: 405,
      code: -32000,
      message: 'HTTP method not allowed here',
      headers: { allow: 'GET' },
    },
    {
      name: 'an unsupported MCP-Protocol-Version',
      send: post(ping, { 'mcp-protocol-version': '1999-01-01' }),
      status: 400,
      code: -32022,
      message: 'Unsupported protocol version',
      id: 1,
      data: { supported: ['2026-07-28'], requested: '1999-01-01' },
    },
    {
      name: 'an unsupported version in _meta',
      send: () =>
        postJson(url, alice, {
          ...ping,
          params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
        }),
      // A version in _meta makes it a stateless request, and those must name their version in the header too.
      status: 400,
      code: -32020,
      message: 'Header mismatch: MCP-Protocol-Version header required',
      id: 1,
    },
    {
      name: 'a foreign Host (DNS rebinding)',
      send: post(ping, { host: 'evil.example' }),
      status: 403,
      code: -32000,
      message: 'Host not allowed',
    },
    {
      name: 'a loopback Host on another port',
      send: post(ping, { host: '127.0.0.1:1' }),
      status: 403,
      code: -32000,
      message: 'Host not allowed',
    },
    {
      name: 'a foreign Origin',
      send: post(ping, { origin: 'http://evil.example' }),
      status: 403,
      code: -32000,
      message: 'Origin not allowed',
    },
    {
      name: 'the null Origin',
      send: post(ping, { origin: 'null' }),
      status: 403,
      code: -32000,
      message: 'Origin not allowed',
    },
    {
      name: 'a foreign Origin on the legacy stream',
      send: () =>
        rawRequest(`${fx.gateway.baseUrl}/mcp/crm/sse`, {
          headers: { ...alice, accept: 'text/event-stream', origin: 'http://evil.example' },
        }),
      status: 403,
      code: -32000,
      message: 'Origin not allowed',
    },
  ];

  for (const c of HTTP_REFUSALS) {
    it(`${c.name} → HTTP ${c.status}, JSON-RPC ${c.code}`, async () => {
      const before = upstreamPosts();
      const r = await c.send();
      assert.equal(r.status, c.status, r.text);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      // Refused after the body was parsed: the error answers the request, with its id.
      const error = { code: c.code, message: c.message, ...(c.data ? { data: c.data } : {}) };
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: c.id ?? null, error });
      for (const [h, v] of Object.entries(c.headers ?? {})) assert.equal(r.headers[h], v, `header ${h}`);
      assert.equal(r.headers['mcp-session-id'], undefined, 'a refusal names no session');
      assertNoLeak(r.text, secrets);
      assert.equal(upstreamPosts(), before, 'nothing reached the upstream');
      await positiveControl();
    });
  }

  it('a body that arrives too slowly is refused with 408, the connection is closed, and nothing reaches the upstream', async () => {
    const before = upstreamPosts();
    const started = Date.now();
    const r = await slowBodyRequest(
      url,
      { ...alice, 'mcp-session-id': sessionId, 'content-type': 'application/json', accept: 'application/json' },
      '{"jsonrpc":"2.0",',
      1000,
    );
    assert.equal(r.status, 408);
    assert.equal(rpcError(r).message, 'Request body not received in time');
    assert.equal(r.headers.connection, 'close');
    assert.ok(Date.now() - started >= BODY_TIMEOUT_MS - 100, 'refused at the configured bound, not before');
    assertNoLeak(r.text, secrets);
    assert.equal(upstreamPosts(), before);
    await positiveControl();
  });

  it('positive controls for the limits: a body just under the cap, a batch of 100, the current version, an allowed Origin', async () => {
    const underCap = toolCall('get_customer', { customer_id: 'c-100', pad: '' });
    (underCap.params as { arguments: { pad: string } }).arguments.pad = 'x'.repeat(
      MAX_BODY - JSON.stringify(underCap).length,
    );
    assert.equal(JSON.stringify(underCap).length, MAX_BODY);
    const cases: Array<[string, () => Promise<RawResponse>]> = [
      ['body of exactly maxBodyBytes', () => postJson(url, alice, underCap, sessionId)],
      [
        'chunked body of exactly maxBodyBytes',
        () =>
          rawRequest(url, {
            method: 'POST',
            chunked: true,
            body: JSON.stringify(underCap),
            headers: {
              'content-type': 'application/json',
              accept: 'application/json',
              ...alice,
              'mcp-session-id': sessionId,
            },
          }),
      ],
      ['MCP-Protocol-Version 2025-11-25', post(rpc('tools/list'), { 'mcp-protocol-version': '2025-11-25' })],
      ['Content-Type with a charset', post(rpc('tools/list'), { 'content-type': 'application/json; charset=utf-8' })],
      ['the configured Origin', post(rpc('tools/list'), { origin: ALLOWED_ORIGIN })],
      ["the gateway's own Origin", post(rpc('tools/list'), { origin: fx.gateway.baseUrl })],
      ['Host localhost:port', post(rpc('tools/list'), { host: `localhost:${fx.gateway.port}` })],
    ];
    for (const [name, send] of cases) {
      const r = await send();
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.ok((r.json as { result?: unknown }).result, `${name}: ${r.text}`);
    }
    // Batches exist in 2025-03-26 (not in 2025-06-18 and later): a session of that version may send one.
    const batch = await postJson(
      url,
      alice,
      Array.from({ length: 100 }, (_, i) => ({ ...ping, id: `p${i}` })),
      await openSession(url, alice, '2025-03-26'),
    );
    assert.equal(batch.status, 200, batch.text);
    const answers = batch.json as Array<{ id: string; result?: unknown }>;
    assert.equal(answers.length, 100);
    assert.deepEqual(answers.map((a) => a.id).sort(), Array.from({ length: 100 }, (_, i) => `p${i}`).sort());
    assert.ok(answers.every((a) => a.result !== undefined));
  });

  it('a bad request does not spoil the connection it came on (keep-alive after 413 and 400)', async () => {
    // Several requests on one kept-alive socket: a refusal drains the body and the next request is served.
    const { Agent, request } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const u = new URL(url);
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              accept: 'application/json',
              ...alice,
              'mcp-session-id': sessionId,
              'content-length': String(Buffer.byteLength(body)),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              text += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      assert.equal((await send('{not json')).status, 400);
      assert.equal((await send(JSON.stringify(rpc('tools/list')))).status, 200);
      assert.equal((await send(oversized)).status, 413);
      assert.equal((await send(JSON.stringify(rpc('tools/list')))).status, 200);
    } finally {
      agent.destroy();
    }
  });

  interface Denial {
    name: string;
    message: Record<string, unknown>;
    ruleIds: string[];
    target?: string;
  }
  const DENIALS: Denial[] = [
    { name: 'an unknown JSON-RPC method foo/bar', message: rpc('foo/bar', {}), ruleIds: ['method-table:unknown'] },
    {
      name: 'a method that only servers send (sampling/createMessage)',
      message: rpc('sampling/createMessage', {}),
      ruleIds: ['method-table:unknown'],
    },
    { name: 'an own-property lookalike (constructor)', message: rpc('constructor'), ruleIds: ['method-table:unknown'] },
    {
      name: 'tools/call without a name',
      message: toolCall(undefined, { customer_id: 'c-100' }),
      ruleIds: ['method-table:malformed'],
    },
    {
      name: 'tools/call with a non-string name',
      message: rpc('tools/call', { name: 7, arguments: {} }),
      ruleIds: ['method-table:malformed'],
    },
    { name: 'an unknown tool name', message: toolCall('drop_all_tables', {}), ruleIds: [], target: 'drop_all_tables' },
    { name: 'resources/read without a uri', message: rpc('resources/read', {}), ruleIds: ['method-table:malformed'] },
  ];

  for (const d of DENIALS) {
    it(`${d.name} on a valid session → JSON-RPC -32003, audited, not forwarded`, async () => {
      const before = upstreamPosts();
      const r = await postJson(url, alice, d.message, sessionId);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: d.message.id, error: { code: -32003, message: DENIED } });
      assertNoLeak(r.text, secrets);
      assert.equal(upstreamPosts(), before, 'nothing reached the upstream');
      const row = (await fx.gateway.runtime.audit.query({ kind: 'decision', limit: 1 }))[0]!;
      assert.equal(row.method, d.message.method);
      assert.equal(row.decision, 'deny');
      assert.deepEqual(row.ruleIds, d.ruleIds);
      assert.equal(row.target, d.target);
      assert.equal(row.userSubject, 'alice');
      await positiveControl();
    });
  }

  it('a notification of an unknown method is accepted (202) but not forwarded', async () => {
    const before = upstreamPosts();
    const r = await postJson(url, alice, { jsonrpc: '2.0', method: 'notifications/foo' }, sessionId);
    assert.equal(r.status, 202);
    assert.equal(upstreamPosts(), before);
    await positiveControl();
  });

  describe('upstream failures', () => {
    let rawUrl: string;
    let slowUrl: string;
    before(() => {
      rawUrl = fx.gateway.urlFor('raw');
      slowUrl = fx.gateway.urlFor('slow');
    });

    const echo = (text: string) => toolCall('echo', { text });
    const echoed = (r: RawResponse) => (rpcResult(r) as { content: Array<{ text: string }> }).content[0]!.text;

    it('a crashed upstream: the call gets "upstream unavailable", the session ends, a new session works', async () => {
      const headers = await fx.headersFor('alice', { upstream: 'raw' });
      const sid = await openSession(rawUrl, headers);
      assert.equal(echoed(await postJson(rawUrl, headers, echo('before'), sid)), 'before');

      const call = toolCall('crash');
      const r = await postJson(rawUrl, headers, call, sid);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, {
        jsonrpc: '2.0',
        id: call.id,
        error: { code: -32010, message: 'Upstream MCP server unavailable' },
      });
      assertNoLeak(r.text, [...secrets, sid, headers.authorization!.slice(7)]);

      const afterCall = echo('after');
      const after = await postJson(rawUrl, headers, afterCall, sid);
      assert.equal(after.status, 404);
      // The body was parsed: the error answers its request, with its id.
      assert.deepEqual(after.json, {
        jsonrpc: '2.0',
        id: afterCall.id,
        error: { code: -32000, message: 'Session not found' },
      });

      const outcome = (await fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 20 })).find(
        (e) => e.callId && e.target === 'crash',
      );
      assert.equal(outcome?.outcome, 'upstream_unavailable');
      const ended = (await fx.gateway.runtime.audit.query({ kind: 'session', limit: 20 })).filter(
        (e) => e.route === 'raw' && e.outcome === 'ended: upstream closed',
      );
      assert.equal(ended.length, 1);

      const fresh = await openSession(rawUrl, headers);
      assert.notEqual(fresh, sid);
      assert.equal(echoed(await postJson(rawUrl, headers, echo('fresh'), fresh)), 'fresh');
      await positiveControl();
    });

    it('a hanging upstream: the call gets "upstream timed out" after requestTimeoutMs, and the session and gateway keep serving', async () => {
      const headers = await fx.headersFor('alice', { upstream: 'slow' });
      const sid = await openSession(slowUrl, headers);
      const call = toolCall('sleep', { ms: 60_000 });
      const started = Date.now();
      const r = await postJson(slowUrl, headers, call, sid);
      const took = Date.now() - started;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, {
        jsonrpc: '2.0',
        id: call.id,
        error: { code: -32010, message: 'Upstream MCP server timed out' },
      });
      assert.ok(took >= SLOW_TIMEOUT_MS - 50 && took < SLOW_TIMEOUT_MS + 5000, `answered after ${took} ms`);
      const outcome = (await fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 20 })).find(
        (e) => e.target === 'sleep',
      );
      assert.equal(outcome?.outcome, 'upstream_timeout');
      // The same session still answers (the upstream is alive, only that one call was given up) …
      assert.equal(echoed(await postJson(slowUrl, headers, echo('still here'), sid)), 'still here');
      // … and so does every other route.
      await positiveControl();
    });
  });
});
