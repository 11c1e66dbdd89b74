/**
 * Lists match calls through `behalf/sdk`'s handler wrapping, as properties
 * over generated principals and calls (fast-check), on the demo CRM on SDK v1
 * in-process (test/helpers/direct-transport.ts; the HTTP half is tested in
 * test/sdk-attacks.test.ts). Principals: any demo subject or a stranger, a
 * role claim of rep, manager, another value or none, any subset of the
 * CRM's customer ids (or a mistyped value). For each:
 * (a) nothing unlisted is callable: an allowed tools/call names a tool
 *     tools/list showed this principal, an allowed resources/read a URI
 *     resources/list showed;
 * (b) everything listed is callable: each listed tool has a call built for
 *     the principal (her own customer, herself as owner) that is allowed or
 *     refused only for a step-up scope — for well-formed claims (a string
 *     role, a list of ids), as the engine-level property states it.
 * The engine-level properties (test/listing-consistency.test.ts) prove the
 * same of authorizeMessage and filterListResult; this proves the SDK applies
 * both to the same requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createCustomerStore, seedCustomers } from '../demo/crm/data.js';
import { createCrmServer } from '../demo/crm/server.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import type { Principal } from '../src/identity/principal.js';
import { authInfoFor, SdkCaller } from '../src/sdk/caller.js';
import { createBoundary, type Boundary } from '../src/sdk/index.js';
import { DirectTransport } from './helpers/direct-transport.js';
import { FORBIDDEN } from './helpers/transport-clients.js';
import { tempDir } from './helpers/tmp.js';

const IDS = seedCustomers().map((c) => c.id);
const TOOLS = ['get_customer', 'list_customers', 'update_customer', 'export_all_customers', 'not_a_tool'];

interface Shape {
  sub: string;
  role?: unknown;
  customers?: unknown;
}

const shapes: fc.Arbitrary<Shape> = fc.record(
  {
    sub: fc.constantFrom('alice', 'bob', 'carol', 'mallory'),
    role: fc.constantFrom('rep', 'manager', 'admin', 7),
    customers: fc.oneof(fc.subarray(IDS), fc.constant('c-100')),
  },
  { requiredKeys: ['sub'] },
);

const argsFor = fc.oneof(
  fc.record({ customer_id: fc.constantFrom(...IDS, 'c-999') }),
  fc.record({ owner: fc.constantFrom('alice', 'bob', 'carol', 'mallory') }),
  fc.constant({}),
  fc.record({ customer_id: fc.integer() }),
);

function principalOf(s: Shape): Principal {
  const claims: Record<string, unknown> = {};
  if (s.role !== undefined) claims.role = s.role;
  if (s.customers !== undefined) claims.customers = s.customers;
  return {
    client: { id: 'agent', method: 'oauth-token', credentialId: 'agent' },
    user: {
      issuer: 'https://idp.test',
      subject: s.sub,
      claims,
      scopes: ['mcp:tools', 'crm:read'],
      expiresAt: 4e9,
      tokenFingerprint: 'f',
    },
  };
}

type Outcome = 'allowed' | 'step-up' | 'denied' | 'other';

describe('behalf/sdk: lists match calls, as properties over principals and calls (SDK v1, in-process)', () => {
  let boundary: Boundary;
  let transport: DirectTransport;
  let id = 1;
  before(async () => {
    const dir = tempDir('behalf-sdk-prop-');
    boundary = await createBoundary({
      config: {
        raw: {
          clients: [{ id: 'agent', oauthClientIds: ['agent'] }],
          userAuth: { mode: 'oauth', issuers: [{ issuer: 'https://idp.test', userClaims: ['role', 'customers'] }] },
          policy: { rules: DEMO_POLICY },
          audit: { sqlitePath: ':memory:' },
          sdk: { name: 'crm', resource: 'http://127.0.0.1:1/mcp' },
        },
        baseDir: dir,
      },
      log: () => undefined,
    });
    transport = new DirectTransport();
    await boundary.protect(createCrmServer(createCustomerStore())).connect(transport);
  });
  after(async () => {
    await boundary?.close();
  });

  const ask = async (p: Principal, method: string, params: Record<string, unknown>) => {
    const reply = await transport.request(id++, method, params, authInfoFor(new SdkCaller(p, boundary.runtime)));
    return reply as { result?: Record<string, unknown>; error?: { code: number; data?: { error?: string } } };
  };
  const outcome = async (p: Principal, method: string, params: Record<string, unknown>): Promise<Outcome> => {
    const r = await ask(p, method, params);
    if (r.result) return 'allowed';
    if (r.error?.data?.error === 'insufficient_scope') return 'step-up';
    return r.error?.code === FORBIDDEN ? 'denied' : 'other';
  };

  it('(a) nothing unlisted is callable, and (b) everything listed is callable', async () => {
    await ask(principalOf({ sub: 'alice' }), 'initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'prop', version: '0' },
    });
    const result = await fc.check(
      fc.asyncProperty(
        shapes,
        fc.array(fc.tuple(fc.constantFrom(...TOOLS), argsFor), { maxLength: 6 }),
        async (s, calls) => {
          const p = principalOf(s);
          const tools = new Set(
            ((await ask(p, 'tools/list', {})).result?.tools as Array<{ name: string }>).map((t) => t.name),
          );
          const uris = new Set(
            ((await ask(p, 'resources/list', {})).result?.resources as Array<{ uri: string }>).map((r) => r.uri),
          );
          for (const [tool, args] of calls) {
            const got = await outcome(p, 'tools/call', { name: tool, arguments: args });
            if (got === 'allowed' || got === 'step-up')
              assert.ok(tools.has(tool), `${tool} ${JSON.stringify(args)} ${got} but not listed`);
          }
          for (const cid of IDS) {
            const uri = `crm://customers/${cid}`;
            assert.equal((await outcome(p, 'resources/read', { uri })) === 'allowed', uris.has(uri), `${uri}`);
          }
          // (b) for the claims an issuer's requiredClaims let through (a string role, a list of ids): with a claim missing or
          // mistyped an item may stay listed while every call is denied (fail closed), the gap listing-consistency keeps as TODO.
          if (typeof s.role !== 'string' || !Array.isArray(s.customers)) return;
          const own = [...(s.customers as string[]), 'c-100'];
          for (const tool of tools) {
            const witnesses =
              tool === 'list_customers'
                ? [{ owner: s.sub }]
                : tool === 'export_all_customers'
                  ? [{}]
                  : own.map((c) => ({ customer_id: c }));
            const results = await Promise.all(
              witnesses.map((w) => outcome(p, 'tools/call', { name: tool, arguments: w })),
            );
            assert.ok(
              results.some((r) => r === 'allowed' || r === 'step-up'),
              `${tool} listed for ${JSON.stringify(s)} but no witness passes`,
            );
          }
        },
      ),
      { numRuns: 60 },
    );
    // fc.check rather than fc.assert: the failure's own message (which item, which principal) is what a reader needs.
    if (result.failed)
      assert.fail(`${JSON.stringify(result.counterexample)}: ${(result.errorInstance as Error | undefined)?.message}`);
  });
});
