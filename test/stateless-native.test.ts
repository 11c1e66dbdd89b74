/**
 * The stateless era against an upstream that speaks it (2026-07-28), through
 * a real gateway process with the demo policy: the MUSTs the gateway enforces
 * itself (each error answers its request's id), native pass-through (headers,
 * credentials, result fields), and the new paths a rep must not use to reach
 * another rep's customer — a stateless call, a continuation of an
 * input-required call (forged, tampered, replayed, another user's, swapped
 * arguments) and a subscription stream — each with its positive control.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startNativeCrmServer, type NativeCrmServer } from './helpers/native-crm-server.js';
import { startSpawnedGateway, type SpawnedGateway } from './helpers/spawned-gateway.js';

const V = '2026-07-28';
const FORBIDDEN = -32003;
const INVALID_PARAMS = -32602;
const HEADER_MISMATCH = -32020;
const UNSUPPORTED_VERSION = -32022;
const METHOD_NOT_FOUND = -32601;
const META = {
  'io.modelcontextprotocol/protocolVersion': V,
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
};

interface Reply {
  status: number;
  type: string;
  text: string;
  body?: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };
}

let nextId = 1000;

/** One stateless request in the wire form; `headers` replaces (or, as undefined, removes) the mirrored ones. */
async function post(
  url: string,
  creds: Record<string, string>,
  method: string,
  params: Record<string, unknown> = {},
  headers: Record<string, string | undefined> = {},
  id: number = nextId++,
): Promise<Reply & { id: number }> {
  const name = method === 'tools/call' ? params.name : undefined;
  const base: Record<string, string | undefined> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': V,
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...creds,
    ...headers,
  };
  const sent = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const withMeta = '_meta' in params ? params : { ...params, _meta: META };
  const res = await fetch(url, {
    method: 'POST',
    headers: sent,
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: withMeta }),
  });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  let body: Reply['body'];
  try {
    body = type.includes('json') ? (JSON.parse(text) as Reply['body']) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, type, text, body, id };
}

describe('stateless requests to an upstream of the stateless era', () => {
  let upstream: NativeCrmServer;
  let gw: SpawnedGateway;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  before(async () => {
    upstream = await startNativeCrmServer();
    gw = await startSpawnedGateway({
      config: { upstreams: { crm: { transport: 'streamable-http', url: upstream.url } } },
    });
    alice = gw.alice;
    bob = await gw.headersFor('bob');
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const call = (creds: Record<string, string>, customer: string, extra: Record<string, unknown> = {}) =>
    post(gw.url, creds, 'tools/call', { name: 'get_customer', arguments: { customer_id: customer }, ...extra });

  const decisions = () => {
    const db = new Database(gw.auditPath, { readonly: true });
    try {
      return db
        .prepare(
          "SELECT call_id, continuation_of, method, decision, rule_ids, refused_by FROM audit_events WHERE kind = 'decision' ORDER BY seq",
        )
        .all() as Array<Record<string, string | null>>;
    } finally {
      db.close();
    }
  };

  describe('the MUSTs the gateway enforces itself, each answering the request id', () => {
    const CASES: Array<{
      name: string;
      send: () => Promise<Reply & { id: number }>;
      status: number;
      code: number;
      data?: unknown;
    }> = [
      {
        name: 'no _meta',
        send: () => post(gw.url, alice, 'tools/list', { _meta: undefined }),
        status: 400,
        code: INVALID_PARAMS,
      },
      {
        name: '_meta without clientCapabilities',
        send: () => post(gw.url, alice, 'tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': V } }),
        status: 400,
        code: INVALID_PARAMS,
      },
      {
        name: 'no MCP-Protocol-Version header',
        send: () => post(gw.url, alice, 'tools/list', {}, { 'mcp-protocol-version': undefined }),
        status: 400,
        code: HEADER_MISMATCH,
      },
      {
        name: 'header and _meta disagree',
        send: () =>
          post(gw.url, alice, 'tools/list', {
            _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' },
          }),
        status: 400,
        code: HEADER_MISMATCH,
      },
      {
        name: 'a version the gateway does not serve',
        send: () =>
          post(
            gw.url,
            alice,
            'tools/list',
            { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
            { 'mcp-protocol-version': '2099-01-01' },
          ),
        status: 400,
        code: UNSUPPORTED_VERSION,
        data: { supported: [V], requested: '2099-01-01' },
      },
      {
        name: 'no Mcp-Method',
        send: () => post(gw.url, alice, 'tools/list', {}, { 'mcp-method': undefined }),
        status: 400,
        code: HEADER_MISMATCH,
      },
      {
        name: 'Mcp-Method in the wrong case',
        send: () => post(gw.url, alice, 'tools/list', {}, { 'mcp-method': 'TOOLS/LIST' }),
        status: 400,
        code: HEADER_MISMATCH,
      },
      {
        name: 'no Mcp-Name on tools/call',
        send: () =>
          post(gw.url, alice, 'tools/call', { name: 'get_customer', arguments: {} }, { 'mcp-name': undefined }),
        status: 400,
        code: HEADER_MISMATCH,
      },
      {
        name: 'Mcp-Name naming another tool',
        send: () =>
          post(gw.url, alice, 'tools/call', { name: 'get_customer', arguments: {} }, { 'mcp-name': 'list_customers' }),
        status: 400,
        code: HEADER_MISMATCH,
      },
      { name: 'removed method ping', send: () => post(gw.url, alice, 'ping'), status: 404, code: METHOD_NOT_FOUND },
      {
        name: 'removed method initialize',
        send: () => post(gw.url, alice, 'initialize'),
        status: 404,
        code: METHOD_NOT_FOUND,
      },
      {
        name: 'a method nobody knows',
        send: () => post(gw.url, alice, 'unknown/method'),
        status: 404,
        code: METHOD_NOT_FOUND,
      },
    ];
    for (const c of CASES) {
      it(`${c.name} → HTTP ${c.status}, ${c.code}`, async () => {
        const r = await c.send();
        assert.equal(r.status, c.status, r.text);
        assert.equal(r.body?.error?.code, c.code, r.text);
        assert.equal(r.body?.id, r.id, 'the error carries the request id');
        if (c.data) assert.deepEqual(r.body?.error?.data, c.data);
      });
    }

    it('positive controls: the same requests in the right form are served; a Base64 Mcp-Name is decoded', async () => {
      const list = await post(gw.url, alice, 'tools/list');
      assert.equal(list.status, 200, list.text);
      const encoded = `=?base64?${Buffer.from('get_customer').toString('base64')}?=`;
      const r = await post(
        gw.url,
        alice,
        'tools/call',
        { name: 'get_customer', arguments: { customer_id: 'c-100' } },
        { 'mcp-name': encoded },
      );
      assert.equal(r.body?.result?.resultType, 'input_required', r.text);
    });

    it('an unknown method is still decided and recorded (denied by default)', () => {
      const d = decisions().filter((r) => r.method === 'unknown/method');
      assert.equal(d.length, 1);
      assert.equal(d[0]!.decision, 'deny');
      assert.match(String(d[0]!.rule_ids), /method-table:unknown/);
    });

    it('a request without credentials is refused before its body is read', async () => {
      const r = await post(gw.url, {}, 'tools/list');
      assert.equal(r.status, 401);
    });
  });

  describe('native pass-through', () => {
    it('forwards with the mirrored headers and never the client credentials; results carry the 2026 fields', async () => {
      const before = upstream.seen.length;
      const r = await post(gw.url, alice, 'tools/list');
      assert.deepEqual(
        {
          resultType: r.body?.result?.resultType,
          ttlMs: r.body?.result?.ttlMs,
          cacheScope: r.body?.result?.cacheScope,
        },
        { resultType: 'complete', ttlMs: 0, cacheScope: 'private' },
      );
      const got = upstream.seen.slice(before).find((s) => s.body.method === 'tools/list')!;
      assert.equal(got.headers['mcp-method'], 'tools/list');
      assert.equal(got.headers['mcp-protocol-version'], V);
      for (const s of upstream.seen) {
        assert.equal(s.headers.authorization, undefined);
        assert.equal(s.headers['x-api-key'], undefined);
      }
      const c = await call(alice, 'c-100');
      const forwarded = upstream.seen.at(-1)!;
      assert.equal(forwarded.headers['mcp-name'], 'get_customer');
      assert.equal(c.body?.result?.resultType, 'input_required');
    });
  });

  describe("a rep cannot reach another rep's customer through the new paths", () => {
    const accept = { confirm: { action: 'accept', content: {} } };

    it("stateless call: bob's customer is denied to alice; her own goes through", async () => {
      const denied = await call(alice, 'c-200');
      assert.equal(denied.body?.error?.code, FORBIDDEN, denied.text);
      const own = await call(alice, 'c-100');
      assert.equal(own.body?.result?.resultType, 'input_required', own.text);
    });

    it('continuation: sealed by the gateway, roots not passed on, completes for its own principal and is linked on the record', async () => {
      const first = await call(alice, 'c-100');
      const state = first.body!.result!.requestState as string;
      assert.ok(state.startsWith('bh1.'), 'the gateway issues its own requestState');
      assert.ok(!state.includes('c-100'), "the upstream's state travels sealed");
      assert.deepEqual(Object.keys(first.body!.result!.inputRequests as object), ['confirm']);
      const done = await call(alice, 'c-100', { inputResponses: accept, requestState: state });
      assert.equal((done.body?.result?.structuredContent as { owner?: string }).owner, 'alice', done.text);
      const d = decisions();
      const firstRec = d
        .filter((r) => r.method === 'tools/call' && !r.continuation_of && r.decision === 'allow')
        .at(-1)!;
      const cont = d.at(-1)!;
      assert.equal(cont.continuation_of, firstRec.call_id);
    });

    it("forged or tampered requestState is refused (the upstream's own format naming bob's customer)", async () => {
      const forged = await call(alice, 'c-100', {
        inputResponses: accept,
        requestState: JSON.stringify({ customerId: 'c-200' }),
      });
      assert.equal(forged.body?.error?.code, INVALID_PARAMS, forged.text);
      assert.ok(!forged.text.includes('Farid'), "no trace of bob's customer");
      const state = (await call(alice, 'c-100')).body!.result!.requestState as string;
      const tampered = await call(alice, 'c-100', {
        inputResponses: accept,
        requestState: `${state.slice(0, -4)}AAAA`,
      });
      assert.equal(tampered.body?.error?.code, INVALID_PARAMS);
      // Positive control: the untouched state completes.
      const ok = await call(alice, 'c-100', { inputResponses: accept, requestState: state });
      assert.equal((ok.body?.result?.structuredContent as { id?: string }).id, 'c-100', ok.text);
    });

    it('a continuation is single use', async () => {
      const state = (await call(alice, 'c-101')).body!.result!.requestState as string;
      const once = await call(alice, 'c-101', { inputResponses: accept, requestState: state });
      assert.equal((once.body?.result?.structuredContent as { id?: string }).id, 'c-101');
      const twice = await call(alice, 'c-101', { inputResponses: accept, requestState: state });
      assert.equal(twice.body?.error?.code, INVALID_PARAMS);
      assert.equal(decisions().at(-1)!.refused_by, 'open_continuation');
    });

    it("another user's requestState is refused, with her arguments or his; bob's own continuation works", async () => {
      const bobs = (await call(bob, 'c-200')).body!.result!.requestState as string;
      const withHis = await call(alice, 'c-200', { inputResponses: accept, requestState: bobs });
      assert.equal(withHis.body?.error?.code, INVALID_PARAMS);
      const withHers = await call(alice, 'c-100', { inputResponses: accept, requestState: bobs });
      assert.equal(withHers.body?.error?.code, INVALID_PARAMS);
      assert.ok(!withHis.text.includes('Farid') && !withHers.text.includes('Farid'));
      const his = await call(bob, 'c-200', { inputResponses: accept, requestState: bobs });
      assert.equal((his.body?.result?.structuredContent as { owner?: string }).owner, 'bob', his.text);
    });

    it('swapped arguments are refused even where the policy would allow them', async () => {
      const state = (await call(alice, 'c-102')).body!.result!.requestState as string;
      const swapped = await call(alice, 'c-103', { inputResponses: accept, requestState: state });
      assert.equal(swapped.body?.error?.code, INVALID_PARAMS);
      const same = await call(alice, 'c-102', { inputResponses: accept, requestState: state });
      assert.equal((same.body?.result?.structuredContent as { id?: string }).id, 'c-102');
    });

    it("subscription stream: bob's customer resource is denied to alice; her own opens the stream", async () => {
      const listen = (uri: string) =>
        post(gw.url, alice, 'subscriptions/listen', { notifications: { resourceSubscriptions: [uri] } });
      const denied = await listen('crm://customers/c-200');
      assert.equal(denied.body?.error?.code, FORBIDDEN, denied.text);
      const ctl = new AbortController();
      const res = await fetch(gw.url, {
        method: 'POST',
        signal: ctl.signal,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': V,
          'mcp-method': 'subscriptions/listen',
          ...alice,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 77,
          method: 'subscriptions/listen',
          params: { _meta: META, notifications: { resourceSubscriptions: ['crm://customers/c-100'] } },
        }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes('acknowledged')) text += new TextDecoder().decode((await reader.read()).value);
      assert.match(text, /notifications\/subscriptions\/acknowledged/);
      ctl.abort();
    });
  });
});
