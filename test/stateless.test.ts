/**
 * The stateless era (2026-07-28) through the gateway: the official 2.x client
 * (`@modelcontextprotocol/client`) in each negotiation mode, then raw
 * requests in its wire form against every upstream kind. The gateway keeps
 * a 2025-era upstream connection per route and principal for these, and
 * decides every call for the user exactly as on a session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Client,
  ProtocolError,
  StreamableHTTPClientTransport,
  type VersionNegotiationMode,
} from '@modelcontextprotocol/client';
import type { CrmHttpServer, CrmRequestInfo } from '../demo/crm/http.js';
import type { Fixture } from './helpers/fixture.js';
import { BOBS, CRM_ROUTES, FORBIDDEN, NOT_IN_DENIALS, postRpc, startCrmMatrix } from './helpers/transport-clients.js';
import { STATELESS_VERSION, statelessPost, type RpcBody } from './helpers/transport-stateless.js';

const ROUTES = CRM_ROUTES;
const ALICE_TOOLS = ['get_customer', 'list_customers', 'update_customer'];
const HEADER_MISMATCH = -32020;

function assertDeniedMessage(message: string): void {
  for (const word of NOT_IN_DENIALS) assert.ok(!message.includes(word), `denial message mentions ${word}: ${message}`);
}

describe('stateless (2026-07-28) requests through the gateway', () => {
  let crm: CrmHttpServer;
  let fx: Fixture;
  const seen: CrmRequestInfo[] = [];

  before(async () => {
    ({ fx, crm } = await startCrmMatrix(seen));
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  describe('the 2.x SDK client', () => {
    const MODES: { label: string; mode: VersionNegotiationMode; era: 'modern' | 'legacy' }[] = [
      { label: 'auto: probes server/discover and picks the stateless era', mode: 'auto', era: 'modern' },
      { label: 'pinned to 2026-07-28', mode: { pin: STATELESS_VERSION }, era: 'modern' },
      { label: 'legacy: a 2025-era initialize and session', mode: 'legacy', era: 'legacy' },
    ];

    async function connect2x(user: string, mode: VersionNegotiationMode): Promise<Client> {
      const headers = await fx.headersFor(user, { upstream: ROUTES.stdio });
      const client = new Client({ name: 'behalf-2x-test', version: '0.0.0' }, { versionNegotiation: { mode } });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(fx.gateway.urlFor(ROUTES.stdio)), { requestInit: { headers } }),
      );
      return client;
    }

    for (const { label, mode, era } of MODES) {
      it(`${label}: lists, calls, and is denied another user's data`, async () => {
        const alice = await connect2x('alice', mode);
        const bob = await connect2x('bob', mode);
        try {
          assert.equal(alice.getProtocolEra(), era);
          if (era === 'modern') assert.equal(alice.getNegotiatedProtocolVersion(), STATELESS_VERSION);
          const tools = (await alice.listTools()).tools;
          assert.deepEqual(tools.map((t) => t.name).sort(), ALICE_TOOLS);
          assert.equal(tools.find((t) => t.name === 'get_customer')?.annotations?.readOnlyHint, true);
          const own = await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
          assert.equal((own.structuredContent as { owner?: string }).owner, 'alice');
          await assert.rejects(
            alice.callTool({ name: 'get_customer', arguments: { customer_id: BOBS.id } }),
            (err: unknown) => {
              assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
              assert.equal(err.code, FORBIDDEN);
              assertDeniedMessage(err.message);
              return true;
            },
          );
          const bobs = await bob.callTool({ name: 'get_customer', arguments: { customer_id: BOBS.id } });
          assert.equal((bobs.structuredContent as { owner?: string }).owner, 'bob');
        } finally {
          await alice.close();
          await bob.close();
        }
      });
    }
  });

  for (const [kind, route] of Object.entries(ROUTES)) {
    describe(`raw stateless requests, ${kind} upstream`, () => {
      let url: string;
      let alice: Record<string, string>;
      let bob: Record<string, string>;

      before(async () => {
        url = fx.gateway.urlFor(route);
        alice = await fx.headersFor('alice', { upstream: route });
        bob = await fx.headersFor('bob', { upstream: route });
      });

      it('server/discover answers from the upstream, with no session', async () => {
        const reply = await statelessPost(url, alice, 'server/discover');
        assert.equal(reply.status, 200);
        assert.equal(reply.headers.get('mcp-session-id'), null);
        const result = (reply.body as RpcBody).result!;
        assert.deepEqual(result.supportedVersions, [STATELESS_VERSION]);
        assert.equal(result.resultType, 'complete');
        assert.ok((result.capabilities as Record<string, unknown>).tools, "the upstream's tools capability");
        assert.equal(
          (result._meta as Record<string, { name: string }>)['io.modelcontextprotocol/serverInfo']!.name,
          'behalf-demo-crm',
        );
      });

      it('tools/list is filtered for the caller and carries the 2026-07-28 result fields', async () => {
        const reply = await statelessPost(url, alice, 'tools/list');
        assert.equal(reply.status, 200);
        assert.equal(reply.headers.get('mcp-session-id'), null);
        const result = (reply.body as RpcBody).result!;
        assert.deepEqual((result.tools as { name: string }[]).map((t) => t.name).sort(), ALICE_TOOLS);
        assert.equal(result.resultType, 'complete');
        // Per-user lists must not be cached for anyone else.
        assert.equal(result.cacheScope, 'private');
        assert.equal(result.ttlMs, 0);
      });

      it("alice's own call succeeds, bob's customer is denied to her, bob's own call succeeds", async () => {
        const call = (id: string) => ({ name: 'get_customer', arguments: { customer_id: id } });
        const own = (await statelessPost(url, alice, 'tools/call', call('c-103'))).body as RpcBody;
        assert.equal((own.result!.structuredContent as { owner: string }).owner, 'alice');
        assert.equal(own.result!.resultType, 'complete');

        const denied = await statelessPost(url, alice, 'tools/call', call(BOBS.id));
        assert.equal(denied.status, 200);
        const err = (denied.body as RpcBody).error!;
        assert.equal(err.code, FORBIDDEN);
        assertDeniedMessage(err.message);

        const bobs = (await statelessPost(url, bob, 'tools/call', call(BOBS.id))).body as RpcBody;
        assert.equal((bobs.result!.structuredContent as { owner: string }).owner, 'bob');
      });
    });
  }

  describe('boundaries of the stateless path', () => {
    it('an Mcp-Name that does not mirror the body is refused (400, HeaderMismatch), whatever it claims', async () => {
      const url = fx.gateway.urlFor(ROUTES.stdio);
      const alice = await fx.headersFor('alice', { upstream: ROUTES.stdio });
      const params = { name: 'get_customer', arguments: { customer_id: 'c-100' } };
      for (const name of ['list_customers', 'echo']) {
        const reply = await statelessPost(url, alice, 'tools/call', params, { 'mcp-name': name });
        assert.equal(reply.status, 400, `Mcp-Name: ${name}`);
        assert.equal((reply.body as RpcBody).error?.code, HEADER_MISMATCH, `Mcp-Name: ${name}`);
      }
      // Positive control: with the header mirroring the body, her own customer is served; bob's is still denied.
      const own = await statelessPost(url, alice, 'tools/call', params);
      assert.equal(((own.body as RpcBody).result!.structuredContent as { owner: string }).owner, 'alice');
      const bobs = { ...params, arguments: { customer_id: BOBS.id } };
      assert.equal(((await statelessPost(url, alice, 'tools/call', bobs)).body as RpcBody).error?.code, FORBIDDEN);
    });

    it('only the stateless revision goes without a session: a 2025-era request without one is refused', async () => {
      const url = fx.gateway.urlFor(ROUTES.stdio);
      const alice = await fx.headersFor('alice', { upstream: ROUTES.stdio });
      const reply = await postRpc(
        url,
        alice,
        { jsonrpc: '2.0', id: 1, method: 'tools/list' },
        { 'mcp-protocol-version': '2025-11-25' },
      );
      assert.equal(reply.status, 400);
      assert.equal((reply.body as RpcBody).result, undefined);
    });

    it('each principal gets its own upstream connection, never a shared one', async () => {
      const url = fx.gateway.urlFor(ROUTES['streamable-http']);
      for (const user of ['alice', 'bob']) {
        const reply = await statelessPost(
          url,
          await fx.headersFor(user, { upstream: ROUTES['streamable-http'] }),
          'tools/list',
        );
        assert.equal(reply.status, 200);
      }
      const sessions = [...fx.gateway.runtime.stateless.values()].filter(
        (s) => s.routeName === ROUTES['streamable-http'],
      );
      const users = sessions.map((s) => s.principal.user?.subject).sort();
      assert.deepEqual(users, ['alice', 'bob']);
      assert.notEqual(sessions[0]!.upstream, sessions[1]!.upstream);
      assert.notEqual(sessions[0]!.upstream.sessionId, sessions[1]!.upstream.sessionId);
    });

    it('no credential of the caller reached an HTTP upstream', () => {
      assert.ok(seen.length > 0, "the CRM saw the gateway's requests");
      for (const r of seen) {
        assert.equal(r.headers.authorization, undefined);
        assert.equal(r.headers['x-api-key'], undefined);
        assert.ok(!JSON.stringify(r.headers).includes(fx.apiKey));
      }
    });
  });
});
