/**
 * Every refusal names the pipeline step that made it (docs/architecture.md
 * §2–3): the audit record carries `refusedBy`, and the client's JSON-RPC
 * error comes from the one error table. Each refusal has its positive
 * control: the rightful user's same request is allowed and names no step.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { verifyChain } from '../src/audit/chain.js';
import type { AuditRecord } from '../src/audit/event.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson, rpcError, rpcResult, toolCall } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

describe('a refusal names the step that made it', () => {
  let fx: Fixture;
  let url: string;
  const lines: string[] = [];

  async function records(filter: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
    return (await fx.gateway.runtime.audit.query({ limit: 200 })).filter(filter);
  }

  before(async () => {
    fx = await startFixture({
      policy: {
        rules: DEMO_POLICY,
        rateLimits: [
          { id: 'two-lists', per: ['user', 'tool'], tools: ['list_customers'], capacity: 2, refillPerSecond: 0.001 },
        ],
      },
      gateway: { log: () => {}, debug: (l) => lines.push(l) },
    });
    url = fx.gateway.urlFor('crm');
  });
  after(() => fx?.close());

  it("authorize: bob's customer for alice is refused by `authorize`; her own is allowed with no step named", async () => {
    const headers = await fx.headersFor('alice');
    const sid = await openSession(url, headers);
    const own = await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), sid);
    assert.ok(rpcResult(own), 'positive control: her own customer');
    const other = await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-200' }), sid);
    assert.deepEqual(rpcError(other), { code: -32003, message: 'Forbidden: not allowed for this user' });
    const decisions = await records(
      (r) => r.kind === 'decision' && r.userSubject === 'alice' && r.target === 'get_customer',
    );
    const allowed = decisions.find((r) => r.decision === 'allow');
    const denied = decisions.find((r) => r.decision === 'deny');
    assert.equal(allowed?.refusedBy, undefined);
    assert.equal(denied?.refusedBy, 'authorize');
    assert.ok(
      lines.some((l) => /refused tools\/call on crm by authorize: forbidden/.test(l)),
      lines.join('\n'),
    );
  });

  it('rate_limit: the third list within the bucket is refused by `rate_limit`, the first two are not', async () => {
    const headers = await fx.headersFor('bob');
    const sid = await openSession(url, headers);
    for (let i = 0; i < 2; i++)
      assert.ok(rpcResult(await postJson(url, headers, toolCall('list_customers', { owner: 'bob' }), sid)));
    const third = await postJson(url, headers, toolCall('list_customers', { owner: 'bob' }), sid);
    assert.equal(rpcError(third).code, -32029);
    const decisions = await records(
      (r) => r.kind === 'decision' && r.userSubject === 'bob' && r.target === 'list_customers',
    );
    assert.deepEqual(
      decisions.map((r) => r.refusedBy ?? 'none'),
      ['none', 'none', 'rate_limit'],
    );
    assert.deepEqual(decisions[2]!.ruleIds, ['rate-limit:two-lists']);
  });

  it('authenticate: a wrong API key is refused by the HTTP step `authenticate`; the right one with the same token is served', async () => {
    const headers = await fx.headersFor('carol');
    assert.ok(await openSession(url, headers), 'positive control');
    const r = await postJson(
      url,
      { ...headers, 'x-api-key': 'bhk_not-a-real-key-000000000000000000' },
      { jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(r.status, 401);
    const failures = await records(
      (rec) => rec.kind === 'auth-failure' && /^client_auth_invalid/.test(rec.reason ?? ''),
    );
    assert.equal(failures.at(-1)?.refusedBy, 'authenticate');
  });

  it('the chain with refusedBy fields verifies, and records without one hash as before', async () => {
    const all = await fx.gateway.runtime.audit.query({ limit: 10_000 });
    assert.equal(all[0]!.seq, 1, 'the whole chain');
    assert.ok(all.some((r) => r.refusedBy) && all.some((r) => !r.refusedBy));
    const report = await verifyChain(all);
    assert.deepEqual(report.problems, []);
    assert.ok(report.ok);
    // An edited step name breaks the chain: the field is hashed.
    const edited = all.map((r) => (r.refusedBy ? { ...r, refusedBy: 'forward' } : r));
    assert.equal((await verifyChain(edited)).ok, false);
  });
});

describe('a store written before refusedBy existed', () => {
  it('gains the column on open; its old records keep their hashes and new ones name the step', async () => {
    const path = join(tempDir(), 'old.db');
    const old = new SqliteAuditStore(path);
    await old.append({ ts: 1, kind: 'decision', decision: 'deny', ruleIds: ['r'] });
    await old.close();
    // The table as the previous version made it: no refused_by column.
    const db = new Database(path);
    db.exec('ALTER TABLE audit_events DROP COLUMN refused_by');
    db.close();
    const store = new SqliteAuditStore(path);
    await store.append({ ts: 2, kind: 'decision', decision: 'deny', ruleIds: ['r'], refusedBy: 'authorize' });
    const all = await store.query({ limit: 10 });
    await store.close();
    assert.deepEqual(
      all.map((r) => r.refusedBy ?? 'none'),
      ['none', 'authorize'],
    );
    assert.ok((await verifyChain(all)).ok);
  });
});
