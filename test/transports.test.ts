/**
 * Every downstream transport (Streamable HTTP, legacy SSE) in front of every
 * upstream transport (stdio child, Streamable HTTP, legacy SSE), with the
 * official SDK 1.x client: the same answers and the same decisions on each
 * pair, annotations intact, and none of the caller's credentials reaching
 * an HTTP upstream. Then the Streamable HTTP session lifecycle (GET stream,
 * DELETE) on each upstream kind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import type { CrmHttpServer, CrmRequestInfo } from '../demo/crm/http.js';
import type { Fixture } from './helpers/fixture.js';
import { toolJson } from './helpers/clients.js';
import {
  assertDenied,
  BOBS,
  closeAll,
  connectVia,
  CRM_ROUTES,
  DOWNSTREAMS,
  eventually,
  NOT_IN_DENIALS,
  openSession,
  postRpc,
  sessionHeaders,
  startCrmMatrix,
  type Downstream,
} from './helpers/transport-clients.js';

type Upstream = 'stdio' | 'streamable-http' | 'sse';
const UPSTREAMS: readonly Upstream[] = ['stdio', 'streamable-http', 'sse'];
const ROUTE: Record<Upstream, string> = CRM_ROUTES;

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };
const DESTRUCTIVE = { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false };

/** The JSON text of a one-item resources/read result. */
function resourceJson(result: ReadResourceResult): Record<string, unknown> {
  const item = result.contents[0];
  assert.ok(item && 'text' in item, 'resource has text contents');
  return JSON.parse(item.text) as Record<string, unknown>;
}

describe('transports: every downstream × upstream pair', () => {
  let crm: CrmHttpServer;
  let fx: Fixture;
  /** Every HTTP request the CRM received: the canary for leaked credentials. */
  const seen: CrmRequestInfo[] = [];
  /** Every credential the tests handed to the gateway. */
  const issued = new Set<string>();

  async function credentials(user: string, route: string): Promise<Record<string, string>> {
    const headers = await fx.headersFor(user, { upstream: route });
    issued.add(headers['x-api-key']!);
    issued.add(headers.authorization!.replace(/^Bearer /, ''));
    return headers;
  }

  before(async () => {
    ({ fx, crm } = await startCrmMatrix(seen));
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  for (const down of DOWNSTREAMS) {
    for (const up of UPSTREAMS) describePair(down, up);
  }

  function describePair(down: Downstream, up: Upstream): void {
    describe(`${down} downstream → ${up} upstream`, () => {
      const route = ROUTE[up];
      let alice: Client;
      let bob: Client;
      let carol: Client;

      before(async () => {
        alice = await connectVia(fx, down, route, await credentials('alice', route));
        bob = await connectVia(fx, down, route, await credentials('bob', route));
        carol = await connectVia(fx, down, route, await credentials('carol', route));
      });
      after(() => closeAll([alice, bob, carol]));

      it('initialize reaches the CRM and returns its identity', () => {
        assert.equal(alice.getServerVersion()?.name, 'behalf-demo-crm');
        assert.match(alice.getInstructions() ?? '', /demo CRM/);
        assert.ok(alice.getServerCapabilities()?.tools, 'tools capability passed through');
      });

      it('tools/list is filtered per user and keeps annotations intact', async () => {
        const aliceTools = (await alice.listTools()).tools;
        const carolTools = (await carol.listTools()).tools;
        assert.deepEqual(aliceTools.map((t) => t.name).sort(), ['get_customer', 'list_customers', 'update_customer']);
        assert.deepEqual(carolTools.map((t) => t.name).sort(), [
          'export_all_customers',
          'get_customer',
          'list_customers',
          'update_customer',
        ]);
        const byName = new Map(carolTools.map((t) => [t.name, t]));
        assert.deepEqual(byName.get('get_customer')!.annotations, READ_ONLY);
        assert.deepEqual(byName.get('update_customer')!.annotations, DESTRUCTIVE);
        assert.deepEqual(byName.get('export_all_customers')!.annotations, READ_ONLY);
        assert.equal(byName.get('get_customer')!.title, 'Get customer');
        assert.deepEqual(byName.get('get_customer')!.inputSchema.required, ['customer_id']);
        assert.ok(byName.get('get_customer')!.outputSchema, 'outputSchema passed through');
      });

      it("alice reads her own customer, is denied bob's, and bob reads his own", async () => {
        assert.equal(
          toolJson(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } })).owner,
          'alice',
        );
        await assertDenied(
          alice.callTool({ name: 'get_customer', arguments: { customer_id: BOBS.id } }),
          NOT_IN_DENIALS,
        );
        assert.equal(
          toolJson(await bob.callTool({ name: 'get_customer', arguments: { customer_id: BOBS.id } })).owner,
          'bob',
        );
      });

      it('resources are listed, read and denied per user', async () => {
        const listed = (await alice.listResources()).resources.map((r) => r.uri).sort();
        assert.deepEqual(
          listed,
          ['c-100', 'c-101', 'c-102', 'c-103', 'c-104'].map((id) => `crm://customers/${id}`),
        );
        assert.equal(resourceJson(await alice.readResource({ uri: 'crm://customers/c-101' })).owner, 'alice');
        await assertDenied(alice.readResource({ uri: `crm://customers/${BOBS.id}` }), NOT_IN_DENIALS);
        assert.equal(resourceJson(await bob.readResource({ uri: `crm://customers/${BOBS.id}` })).owner, 'bob');
      });

      it('prompts/get is decided per user', async () => {
        const own = await alice.getPrompt({ name: 'account_summary', arguments: { customer_id: 'c-102' } });
        assert.match(own.description ?? '', /c-102/);
        await assertDenied(
          alice.getPrompt({ name: 'account_summary', arguments: { customer_id: BOBS.id } }),
          NOT_IN_DENIALS,
        );
        const bobs = await bob.getPrompt({ name: 'account_summary', arguments: { customer_id: BOBS.id } });
        assert.match(bobs.description ?? '', new RegExp(BOBS.name));
      });
    });
  }

  describe('Streamable HTTP session lifecycle', () => {
    for (const up of UPSTREAMS) {
      it(
        `GET opens the session stream, DELETE ends the session and its upstream (${up} upstream)`,
        { timeout: 20_000 },
        async () => {
          const route = ROUTE[up];
          const url = fx.gateway.urlFor(route);
          const headers = await credentials('alice', route);
          const id = await openSession(url, headers);
          const session = fx.gateway.runtime.sessions.all().find((s) => s.id === id);
          assert.ok(session, 'the gateway holds the session');
          const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
          // Positive control: the session answers before it is deleted.
          const before = await postRpc(url, sessionHeaders(headers, id), list, { accept: 'application/json' });
          assert.equal(before.status, 200);
          assert.ok(Array.isArray((before.body as { result: { tools: unknown[] } }).result.tools));

          const stream = await fetch(url, { headers: { ...sessionHeaders(headers, id), accept: 'text/event-stream' } });
          assert.equal(stream.status, 200);
          assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
          assert.equal(stream.headers.get('mcp-session-id'), id);
          const reader = stream.body!.getReader();

          const del = await fetch(url, { method: 'DELETE', headers: sessionHeaders(headers, id) });
          assert.equal(del.status, 200);
          // The open stream ends with the session…
          for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
            /* keep-alives only */
          }
          // …the id is now unknown…
          const afterDelete = await postRpc(
            url,
            sessionHeaders(headers, id),
            { ...list, id: 3 },
            { accept: 'application/json' },
          );
          assert.equal(afterDelete.status, 404);
          // …and the upstream connection (child process or HTTP session) is released.
          await eventually(() => session.upstream.isClosed, 5000, 'the upstream connection to close');
          if (up === 'streamable-http') {
            assert.ok(
              seen.some((r) => r.method === 'DELETE' && r.path === '/mcp'),
              'the gateway ended its upstream session',
            );
          }
        },
      );
    }

    it('GET without Accept: text/event-stream is refused (406), with the same session accepted above', async () => {
      const route = ROUTE.stdio;
      const url = fx.gateway.urlFor(route);
      const headers = await credentials('alice', route);
      const id = await openSession(url, headers);
      const refused = await fetch(url, { headers: { ...sessionHeaders(headers, id), accept: 'application/json' } });
      assert.equal(refused.status, 406);
      await refused.body?.cancel();
      const del = await fetch(url, { method: 'DELETE', headers: sessionHeaders(headers, id) });
      assert.equal(del.status, 200);
    });
  });

  describe('credentials never reach an HTTP upstream', () => {
    it('the CRM saw traffic on every endpoint (the canary is live)', () => {
      const paths = new Set(seen.map((r) => `${r.method} ${r.path}`));
      for (const p of ['POST /mcp', 'GET /sse', 'POST /messages']) assert.ok(paths.has(p), `CRM never saw ${p}`);
      assert.ok(issued.size >= 2);
    });

    it('no upstream request carried Authorization, X-Api-Key, or any issued token or key', () => {
      for (const r of seen) {
        assert.equal(r.headers.authorization, undefined, `${r.method} ${r.path} carried Authorization`);
        assert.equal(r.headers['x-api-key'], undefined, `${r.method} ${r.path} carried X-Api-Key`);
        const everything = `${r.url}\n${JSON.stringify(r.headers)}`;
        for (const secret of issued)
          assert.ok(!everything.includes(secret), `${r.method} ${r.path} carried a client credential`);
      }
    });
  });
});
