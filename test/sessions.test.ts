/**
 * Session binding (docs/architecture.md §2 step 5, review check BND-07): a session id is
 * bound to the (client, issuer, subject) that created it, on its own route.
 * Anyone else presenting it gets exactly the answer an unknown id gets,
 * nothing reaches the owner's upstream, and the attempt is audited with
 * fingerprints only. The owner keeps using it (positive control).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import { fingerprint } from '../src/shared/hash.js';
import { OTHER_AGENT, startFixture, type Fixture } from './helpers/fixture.js';
import {
  INITIALIZE,
  assertNoLeak,
  openSession,
  postJson,
  rawRequest,
  rawStream,
  rpc,
  rpcResult,
  type RawResponse,
  type RawStream,
} from './helpers/raw-http.js';

const NOT_FOUND = { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Session not found' } };

/** What a caller can observe of a refusal: status, body and the header names (values like Date differ). */
function observable(r: RawResponse): { status: number; text: string; headers: string[] } {
  const headers = Object.keys(r.headers)
    .filter((h) => h !== 'date')
    .sort();
  // An error answers the request's own id once the body is read (null before): two requests differ only there.
  return { status: r.status, text: r.text.replace(/"id":\d+/, '"id":ID'), headers };
}

describe('session binding', () => {
  const seen: Record<'crm' | 'crm2', CrmRequestInfo[]> = { crm: [], crm2: [] };
  let crms: CrmHttpServer[] = [];
  let fx: Fixture;
  let base: string;
  let url: string;
  let tokens: Record<'alice' | 'bob' | 'aliceViaOther' | 'aliceCrm2', string>;
  /** Every credential in play, none of which may appear in a response or an audit row. */
  let secrets: string[];

  const posts = (route: 'crm' | 'crm2') => seen[route].filter((r) => r.method === 'POST').length;
  const anyRequests = (route: 'crm' | 'crm2') => seen[route].length;
  /** Waits until the upstream has been quiet for a moment: the gateway forwards legacy POSTs after answering 202. */
  async function settle(route: 'crm' | 'crm2'): Promise<void> {
    for (let n = -1; n !== seen[route].length;) {
      n = seen[route].length;
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  before(async () => {
    crms = [
      await startCrmHttp({ onRequest: (i) => seen.crm.push(i) }),
      await startCrmHttp({ onRequest: (i) => seen.crm2.push(i) }),
    ];
    fx = await startFixture({
      upstreams: {
        crm: { transport: 'streamable-http', url: crms[0]!.url },
        crm2: { transport: 'streamable-http', url: crms[1]!.url },
      },
    });
    base = fx.gateway.baseUrl;
    url = fx.gateway.urlFor('crm');
    tokens = {
      alice: await fx.userToken('alice'),
      bob: await fx.userToken('bob'),
      aliceViaOther: await fx.userToken('alice', { client: OTHER_AGENT }),
      aliceCrm2: await fx.userToken('alice', { upstream: 'crm2' }),
    };
    secrets = [fx.apiKey, fx.otherApiKey, ...Object.values(tokens)];
  });
  after(async () => {
    await fx?.close();
    for (const c of crms) await c.close();
  });

  const as = (who: keyof typeof tokens, key?: string): Record<string, string> => ({
    'x-api-key': key ?? (who === 'aliceViaOther' ? fx.otherApiKey : fx.apiKey),
    authorization: `Bearer ${tokens[who]}`,
  });

  /** Principals that are not alice-through-agent on route crm, and what each must get. */
  interface Intruder {
    name: string;
    headers: () => Record<string, string>;
    status: 404 | 401;
    message: string;
    mismatch?: { client: string; subject: string };
  }
  const INTRUDERS: Intruder[] = [
    {
      name: 'bob (same agent, valid token)',
      headers: () => as('bob'),
      status: 404,
      message: 'Session not found',
      mismatch: { client: 'agent', subject: 'bob' },
    },
    {
      name: 'alice through another agent',
      headers: () => as('aliceViaOther'),
      status: 404,
      message: 'Session not found',
      mismatch: { client: 'other-agent', subject: 'alice' },
    },
    {
      name: 'the agent with no user token',
      headers: () => ({ 'x-api-key': fx.apiKey }),
      status: 401,
      message: 'User authentication required',
    },
    { name: 'no credentials at all', headers: () => ({}), status: 401, message: 'Client authentication required' },
    {
      name: "alice's token without the client credential",
      headers: () => ({ authorization: `Bearer ${tokens.alice}` }),
      status: 401,
      message: 'Client authentication required',
    },
  ];

  function assertRefused(r: RawResponse, intruder: Intruder): void {
    assert.equal(r.status, intruder.status, r.text);
    const { id, ...rest } = r.json as { id: unknown };
    assert.ok(id === null || typeof id === 'number', "the id is the request's own, or null before the body is read");
    const { id: _none, ...expected } = NOT_FOUND;
    assert.deepEqual(rest, { ...expected, error: { ...NOT_FOUND.error, message: intruder.message } });
    assert.equal(r.headers['mcp-session-id'], undefined);
    if (intruder.status === 401) assert.match(String(r.headers['www-authenticate']), /^Bearer .*resource_metadata="/);
    assertNoLeak(r.text, secrets);
  }

  async function assertMismatchAudited(
    sessionId: string,
    intruder: Intruder,
    transport: string,
    route = 'crm',
  ): Promise<void> {
    const rows = await fx.gateway.runtime.audit.query({ kind: 'session-mismatch', limit: 1 });
    const row = rows[0]!;
    assert.equal(row.route, route);
    assert.equal(row.transport, transport);
    assert.equal(row.clientId, intruder.mismatch!.client);
    assert.equal(row.userSubject, intruder.mismatch!.subject);
    assert.equal(row.userIssuer, fx.idp.issuer);
    assert.equal(row.sessionFingerprint, fingerprint(sessionId));
    const presented = intruder.headers().authorization!.slice('Bearer '.length);
    assert.equal(row.tokenFingerprint, fingerprint(presented));
    const text = JSON.stringify(rows);
    for (const s of [...secrets, sessionId])
      assert.ok(!text.includes(s), 'a session id or credential is in clear in the audit row');
  }

  describe('Streamable HTTP', () => {
    let sid: string;
    let unknown: Record<'POST' | 'GET' | 'DELETE', RawResponse>;

    const send = (method: 'POST' | 'GET' | 'DELETE', headers: Record<string, string>, id: string, target = url) =>
      method === 'POST'
        ? postJson(target, headers, rpc('tools/list'), id)
        : rawRequest(target, {
            method,
            headers: {
              accept: method === 'GET' ? 'text/event-stream' : 'application/json',
              ...headers,
              'mcp-session-id': id,
            },
          });

    before(async () => {
      sid = await openSession(url, as('alice'));
      // The reference answer: alice herself with an id that never existed.
      const made = fx.gateway.runtime.sessions.newId();
      unknown = {
        POST: await send('POST', as('alice'), made),
        GET: await send('GET', as('alice'), made),
        DELETE: await send('DELETE', as('alice'), made),
      };
      for (const r of Object.values(unknown)) assert.equal(r.status, 404);
    });

    for (const method of ['POST', 'GET', 'DELETE'] as const) {
      for (const intruder of INTRUDERS) {
        it(`${method} with alice's session id by ${intruder.name} → ${intruder.status}${intruder.status === 404 ? ', indistinguishable from an unknown id' : ''}`, async () => {
          const before = {
            posts: posts('crm'),
            all: anyRequests('crm'),
            mismatches: (await fx.gateway.runtime.audit.query({ kind: 'session-mismatch', limit: 1000 })).length,
          };
          const r = await send(method, intruder.headers(), sid);
          assertRefused(r, intruder);
          if (intruder.status === 404) {
            assert.deepEqual(observable(r), observable(unknown[method]));
            await assertMismatchAudited(sid, intruder, 'streamable-http');
          } else {
            assert.equal(
              (await fx.gateway.runtime.audit.query({ kind: 'session-mismatch', limit: 1000 })).length,
              before.mismatches,
              'an unauthenticated caller is refused before any session lookup',
            );
          }
          assert.equal(anyRequests('crm'), before.all, "nothing reached alice's upstream");
          // Positive control: the session is alive and still alice's.
          const own = await postJson(url, as('alice'), rpc('tools/list'), sid);
          assert.deepEqual((rpcResult(own).tools as Array<{ name: string }>).map((t) => t.name).sort(), [
            'get_customer',
            'list_customers',
            'update_customer',
          ]);
          assert.equal(posts('crm'), before.posts + 1);
        });
      }
    }

    it("bob's session works for bob, and alice's id is not his (the 404 is about binding, not bob)", async () => {
      const bobSid = await openSession(url, as('bob'));
      const r = await postJson(
        url,
        as('bob'),
        {
          jsonrpc: '2.0',
          id: 9,
          method: 'tools/call',
          params: { name: 'get_customer', arguments: { customer_id: 'c-200' } },
        },
        bobSid,
      );
      assert.equal((rpcResult(r).structuredContent as { owner: string }).owner, 'bob');
      assert.equal((await postJson(url, as('bob'), rpc('tools/list'), sid)).status, 404);
      assert.equal((await postJson(url, as('alice'), rpc('tools/list'), bobSid)).status, 404);
    });

    it('a session id of another route is unknown on this one (alice, with a valid token for that route)', async () => {
      const crm2Sid = await openSession(fx.gateway.urlFor('crm2'), as('aliceCrm2'));
      const before = anyRequests('crm');
      const r = await postJson(url, as('alice'), rpc('tools/list'), crm2Sid);
      assert.deepEqual(observable(r), observable(unknown.POST));
      assert.equal(anyRequests('crm'), before);
      await assertMismatchAudited(
        crm2Sid,
        {
          name: 'alice',
          headers: () => as('alice'),
          status: 404,
          message: '',
          mismatch: { client: 'agent', subject: 'alice' },
        },
        'streamable-http',
      );
      // And the other way round; each id works on its own route (positive controls).
      const crm2Before = anyRequests('crm2');
      assert.equal((await postJson(fx.gateway.urlFor('crm2'), as('aliceCrm2'), rpc('tools/list'), sid)).status, 404);
      assert.equal(anyRequests('crm2'), crm2Before);
      assert.equal(
        (await postJson(fx.gateway.urlFor('crm2'), as('aliceCrm2'), rpc('tools/list'), crm2Sid)).status,
        200,
      );
      assert.equal((await postJson(url, as('alice'), rpc('tools/list'), sid)).status, 200);
    });

    it('a token for another route is refused outright (401), before any session lookup', async () => {
      const r = await postJson(url, as('aliceCrm2'), rpc('tools/list'), sid);
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
    });

    it("DELETE by another principal leaves the session alive; alice's own DELETE ends it", async () => {
      const own = await openSession(url, as('alice'));
      const denied = await rawRequest(url, { method: 'DELETE', headers: { ...as('bob'), 'mcp-session-id': own } });
      assert.deepEqual(observable(denied), observable(unknown.DELETE));
      assert.equal(fx.gateway.runtime.sessions.all().filter((s) => s.id === own).length, 1);
      assert.equal((await postJson(url, as('alice'), rpc('tools/list'), own)).status, 200);

      const deleted = await rawRequest(url, { method: 'DELETE', headers: { ...as('alice'), 'mcp-session-id': own } });
      assert.equal(deleted.status, 200);
      const gone = await postJson(url, as('alice'), rpc('tools/list'), own);
      assert.deepEqual(observable(gone), observable(unknown.POST));
    });

    it("initialize carrying someone's session id is refused and creates nothing", async () => {
      const count = fx.gateway.runtime.sessions.size;
      const r = await postJson(url, as('bob'), INITIALIZE, sid);
      assert.equal(r.status, 400);
      assert.equal(
        (r.json as { error: { message: string } }).error.message,
        'Invalid JSON-RPC request: initialize must not carry a session id',
      );
      assert.equal(fx.gateway.runtime.sessions.size, count);
    });
  });

  describe('legacy HTTP+SSE', () => {
    let stream: RawStream;
    let messagesUrl: string;
    let sid: string;

    before(async () => {
      stream = await rawStream(`${base}/mcp/crm/sse`, as('alice'));
      assert.equal(stream.status, 200);
      const endpoint = await stream.nextEvent();
      assert.equal(endpoint.event, 'endpoint');
      messagesUrl = new URL(endpoint.data, base).href;
      sid = new URL(messagesUrl).searchParams.get('sessionId')!;
      assert.ok(sid);
    });
    after(() => stream?.close());

    const post = (headers: Record<string, string>, body: unknown, target = messagesUrl) =>
      rawRequest(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    it('alice initializes on her own stream (positive control)', async () => {
      const before = posts('crm');
      assert.equal((await post(as('alice'), INITIALIZE)).status, 202);
      const init = JSON.parse((await stream.nextEvent()).data) as {
        id: number;
        result: { serverInfo: { name: string } };
      };
      assert.equal(init.id, 0);
      assert.equal(init.result.serverInfo.name, 'behalf-demo-crm');
      assert.equal((await post(as('alice'), { jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202);
      assert.equal(posts('crm') > before, true);
    });

    for (const intruder of INTRUDERS) {
      it(`POST to alice's messages endpoint by ${intruder.name} → ${intruder.status}; nothing reaches alice's upstream or stream`, async () => {
        await settle('crm');
        const before = { all: anyRequests('crm'), events: stream.events.length };
        const r = await post(intruder.headers(), rpc('tools/list'));
        assertRefused(r, intruder);
        if (intruder.mismatch) await assertMismatchAudited(sid, intruder, 'sse');
        assert.equal(anyRequests('crm'), before.all, "nothing reached alice's upstream");
        await new Promise((r2) => setTimeout(r2, 50));
        assert.equal(stream.events.length, before.events, "nothing was written to alice's stream");
        // Positive control: alice's own POST is answered on her stream.
        const call = {
          jsonrpc: '2.0',
          id: 77,
          method: 'tools/call',
          params: { name: 'get_customer', arguments: { customer_id: 'c-101' } },
        };
        assert.equal((await post(as('alice'), call)).status, 202);
        const answer = JSON.parse((await stream.nextEvent()).data) as {
          id: number;
          result: { structuredContent: { owner: string } };
        };
        assert.equal(answer.id, 77);
        assert.equal(answer.result.structuredContent.owner, 'alice');
      });
    }

    it('the legacy session id is not a Streamable HTTP session, and a Streamable id is not a legacy one', async () => {
      const viaStreamable = await postJson(url, as('alice'), rpc('tools/list'), sid);
      assert.equal(viaStreamable.status, 404);
      const streamableSid = await openSession(url, as('alice'));
      const viaLegacy = await post(
        as('alice'),
        rpc('tools/list'),
        `${base}/mcp/crm/messages?sessionId=${encodeURIComponent(streamableSid)}`,
      );
      assert.equal(viaLegacy.status, 404);
      assert.deepEqual({ ...(viaLegacy.json as object), id: null }, NOT_FOUND);
    });

    it('an unknown or missing sessionId answers like a foreign one', async () => {
      const unknownId = await post(
        as('alice'),
        rpc('tools/list'),
        `${base}/mcp/crm/messages?sessionId=${fx.gateway.runtime.sessions.newId()}`,
      );
      const foreign = await post(as('bob'), rpc('tools/list'));
      assert.deepEqual(observable(foreign), observable(unknownId));
      const missing = await post(as('alice'), rpc('tools/list'), `${base}/mcp/crm/messages`);
      assert.equal(missing.status, 400);
      assert.equal((missing.json as { error: { code: number } }).error.code, -32600);
    });
  });
});
