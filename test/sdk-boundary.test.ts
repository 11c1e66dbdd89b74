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
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { verifyChain } from '../src/audit/chain.js';
import { FORBIDDEN } from './helpers/transport-clients.js';
import { RPC } from '../src/errors.js';

const RATE_LIMITED = RPC.RateLimited;
import { connectSdk as connect, startSdkFixture, type SdkFixture, type SdkVersion } from './helpers/sdk-fixture.js';

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

    it('the audit chain verifies, and every outcome follows its decision', async () => {
      const reader = new SqliteAuditStore(fx.auditPath, { readonly: true });
      try {
        const report = await verifyChain(reader.records());
        assert.equal(report.ok, true, JSON.stringify(report.problems));
        const records = await reader.query({ limit: 1000 });
        const decided = new Map(records.filter((r) => r.kind === 'decision').map((r) => [r.callId, r]));
        const outcomes = records.filter((r) => r.kind === 'outcome');
        assert.ok(outcomes.length >= 4);
        for (const o of outcomes) {
          const d = decided.get(o.callId);
          assert.ok(d && d.seq < o.seq && d.decision === 'allow', `outcome ${o.seq} follows an allow decision`);
        }
        const denied = records.filter(
          (r) => r.kind === 'decision' && r.decision === 'deny' && r.target === 'get_customer',
        );
        assert.ok(denied.some((r) => r.userSubject === 'alice' && r.args?.includes('c-200')));
        assert.ok(
          !records.some((r) => r.kind === 'outcome' && denied.some((d) => d.callId === r.callId)),
          'a denied call never ran',
        );
      } finally {
        await reader.close();
      }
    });
  });
}

describe('behalf/sdk applies the policy rate limits per user (SDK v1)', () => {
  let fx: SdkFixture;
  before(async () => {
    fx = await startSdkFixture('v1', {
      config: (c) => ({
        ...c,
        policy: {
          ...(c.policy as object),
          rateLimits: [{ id: 'reads', per: ['user'], tools: ['get_customer'], capacity: 2, refillPerSecond: 0.01 }],
        },
      }),
    });
  });
  after(async () => {
    await fx?.close();
  });

  it("alice's third read is refused with a retry time, and bob's bucket is his own", async () => {
    const alice = await connect(fx, 'alice');
    const bob = await connect(fx, 'bob');
    try {
      const read = (c: typeof alice, id: string) =>
        c.callTool({ name: 'get_customer', arguments: { customer_id: id } });
      await read(alice, 'c-100');
      await read(alice, 'c-101');
      await assert.rejects(read(alice, 'c-102'), (err: unknown) => {
        const e = err as { code?: number; data?: { retryAfterMs?: number } };
        assert.equal(e.code, RATE_LIMITED);
        assert.ok((e.data?.retryAfterMs ?? 0) > 0);
        return true;
      });
      assert.equal(ownerOf(await read(bob, 'c-200')), 'bob');
      const [last] = await fx.server.boundary.runtime.audit.query({ kind: 'decision', subject: 'alice', limit: 1 });
      assert.deepEqual([last?.decision, last?.ruleIds, last?.refusedBy], ['deny', ['rate-limit:reads'], 'rate_limit']);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});

describe('behalf/sdk as Express middleware (SDK v1, stateless)', () => {
  let fx: SdkFixture;
  before(async () => {
    fx = await startSdkFixture('v1', { express: true });
  });
  after(async () => {
    await fx?.close();
  });

  it("no token is refused with a challenge; alice is denied bob's customer, bob's own call succeeds", async () => {
    const res = await fetch(fx.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer .*resource_metadata=/);
    const alice = await connect(fx, 'alice');
    const bob = await connect(fx, 'bob');
    try {
      await assert.rejects(
        alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } }),
        (err: unknown) => {
          assert.equal((err as { code?: number }).code, FORBIDDEN);
          return true;
        },
      );
      assert.equal(ownerOf(await bob.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } })), 'bob');
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
