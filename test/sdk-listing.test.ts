/**
 * Lists match calls behind `behalf/sdk` (docs/architecture.md §9: lists are
 * filtered with the call-time rules), through the real servers of both SDKs
 * and each demo user: every listed tool and resource has a witness call that
 * is allowed (or refused only for a step-up scope), and every unlisted one
 * is refused. The boundary calls the gateway's own `authorizeMessage` and
 * `filterListResult`, whose agreement test/listing-consistency.test.ts
 * proves as properties over generated principals and calls; this checks the
 * SDK wiring applies both to the same requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { seedCustomers } from '../demo/crm/data.js';
import { DEMO_USERS } from '../demo/quickstart/users.js';
import { FORBIDDEN } from './helpers/transport-clients.js';
import { connectSdk, startSdkFixture, type AnyClient, type SdkFixture } from './helpers/sdk-fixture.js';

const TOOLS = ['get_customer', 'list_customers', 'update_customer', 'export_all_customers'];

/** A call built to pass for `user` (her own customer, herself as owner). */
function witness(user: string, tool: string): Record<string, unknown> {
  const own = seedCustomers().find((c) => c.owner === user)?.id ?? 'c-100';
  if (tool === 'list_customers') return { owner: user };
  if (tool === 'export_all_customers') return {};
  return { customer_id: own };
}

/** 'allowed', 'step-up' (refused only for scopes) or 'denied'. */
async function outcomeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'allowed';
  } catch (err) {
    const e = err as { code?: number; data?: { error?: string } };
    assert.equal(e.code, FORBIDDEN, `refused by the policy, not otherwise: ${String(err)}`);
    return e.data?.error === 'insufficient_scope' ? 'step-up' : 'denied';
  }
}

for (const [version, era] of [
  ['v1', 'legacy'],
  ['v2', 'modern'],
] as const) {
  describe(`behalf/sdk on MCP SDK ${version} (${era} era): what a user sees is what she may call`, () => {
    let fx: SdkFixture;
    before(async () => {
      fx = await startSdkFixture(version);
    });
    after(async () => {
      await fx?.close();
    });

    for (const { name } of DEMO_USERS) {
      it(`${name}: tools and resources`, async () => {
        const client: AnyClient = await connectSdk(fx, name, era);
        try {
          const listed = new Set((await client.listTools()).tools.map((t) => t.name));
          assert.ok(listed.size > 0);
          for (const tool of TOOLS) {
            const got = await outcomeOf(client.callTool({ name: tool, arguments: witness(name, tool) }));
            if (listed.has(tool))
              assert.notEqual(got, 'denied', `${tool} is listed for ${name} but its witness is denied`);
            else assert.equal(got, 'denied', `${tool} is not listed for ${name} but ${got}`);
          }
          const resources = new Set((await client.listResources()).resources.map((r) => r.uri));
          for (const c of seedCustomers()) {
            const uri = `crm://customers/${c.id}`;
            const got = await outcomeOf(client.readResource({ uri }));
            assert.equal(got, resources.has(uri) ? 'allowed' : 'denied', `${uri} for ${name}`);
          }
        } finally {
          await client.close();
        }
      });
    }
  });
}
