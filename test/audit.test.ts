/**
 * Audit (docs/architecture.md §3 step 5): every decision is written before anything is
 * forwarded, names who (client, issuer, subject, token fingerprint), what
 * (method, target) and why (decision, rule ids), and never holds a token,
 * key, session id or argument value. When the store cannot write, calls fail
 * closed and nothing reaches the upstream.
 *
 * Decision for `initialize` under a failing store: it is refused like every
 * other call (JSON-RPC -32603 "Request refused: audit log unavailable", HTTP
 * 200, no Mcp-Session-Id, no session kept, nothing sent upstream), because
 * it goes through the same decide-audit-forward path; a session whose
 * creation cannot be recorded is not opened.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startCrmHttp, type CrmHttpServer } from '../demo/crm/http.js';
import type { AuditEvent, AuditQuery, AuditRecord, AuditStore } from '../src/audit/event.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { fingerprint } from '../src/shared/hash.js';
import { connectStreamable } from './helpers/clients.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import {
  INITIALIZE,
  assertNoLeak,
  openSession,
  postJson,
  rawStream,
  rpc,
  rpcError,
  rpcResult,
  toolCall,
} from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

/** alice's claims as a decision record keeps them: the ones the demo policy reads, by name in order. */
const ALICE_CLAIMS = { customers: ['c-100', 'c-101', 'c-102', 'c-103', 'c-104'], role: 'rep' };
const AUDIT_REFUSED = { code: -32603, message: 'Request refused: audit log unavailable' };

/** The real SQLite store, with each decision's append noted on a shared timeline (to prove it precedes forwarding). */
class TimelineStore implements AuditStore {
  constructor(
    private readonly inner: AuditStore,
    private readonly timeline: string[],
  ) {}
  async append(e: AuditEvent): Promise<AuditRecord> {
    const rec = await this.inner.append(e);
    if (e.kind === 'decision') this.timeline.push(`audit ${e.method} ${e.target ?? ''} ${e.decision}`);
    return rec;
  }
  query(filter?: AuditQuery): Promise<AuditRecord[]> {
    return this.inner.query(filter);
  }
  records(fromSeq?: number): AsyncIterable<AuditRecord> {
    return this.inner.records(fromSeq);
  }
  secret(name: string): Promise<Buffer> {
    return this.inner.secret(name);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Fault injection: a store that works until told to fail, then rejects every append (as a full disk would). */
class FlakyStore implements AuditStore {
  failing = false;
  readonly stored: AuditRecord[] = [];
  async append(e: AuditEvent): Promise<AuditRecord> {
    if (this.failing) throw new Error('SQLITE_FULL: database or disk is full');
    const rec = { ...e, seq: this.stored.length + 1, prevHash: '', hash: '' };
    this.stored.push(rec);
    return rec;
  }
  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    return this.stored.filter((e) => !filter.kind || e.kind === filter.kind).slice(-(filter.limit ?? 100));
  }
  async *records(fromSeq = 1): AsyncIterable<AuditRecord> {
    yield* this.stored.filter((r) => r.seq >= fromSeq);
  }
  async secret(): Promise<Buffer> {
    return Buffer.alloc(32);
  }
  async close(): Promise<void> {}
}

describe('every decision is audited before forwarding, with no secret in any row', () => {
  const timeline: string[] = [];
  let crm: CrmHttpServer;
  let fx: Fixture;
  let dbPath: string;
  let aliceToken: string;
  let sessionId: string;
  const ARG_VALUES = ['ARGVAL-allowed-notes-7f3a', 'ARGVAL-denied-notes-9b1c'];
  const BAD_KEY = 'bh_forged_key_SECRET_1234567890';
  const BAD_TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.SECRETSIGNATURE';

  interface Call {
    tool: string;
    args: Record<string, unknown>;
    decision: 'allow' | 'deny';
    ruleIds: string[];
  }
  const CALLS: Call[] = [
    { tool: 'get_customer', args: { customer_id: 'c-100' }, decision: 'allow', ruleIds: ['reps-read-own'] },
    {
      tool: 'update_customer',
      args: { customer_id: 'c-101', notes: ARG_VALUES[0] },
      decision: 'allow',
      ruleIds: ['reps-update-own'],
    },
    { tool: 'list_customers', args: { owner: 'alice' }, decision: 'allow', ruleIds: ['reps-list-own'] },
    { tool: 'get_customer', args: { customer_id: 'c-203' }, decision: 'deny', ruleIds: [] },
    { tool: 'update_customer', args: { customer_id: 'c-204', notes: ARG_VALUES[1] }, decision: 'deny', ruleIds: [] },
    { tool: 'list_customers', args: { owner: 'bob' }, decision: 'deny', ruleIds: [] },
    { tool: 'export_all_customers', args: {}, decision: 'deny', ruleIds: [] },
  ];

  before(async () => {
    crm = await startCrmHttp({
      onRequest: (i) => {
        if (i.method === 'POST') timeline.push(`upstream ${i.method} ${i.path}`);
      },
    });
    dbPath = join(tempDir(), 'audit.db');
    fx = await startFixture({
      upstreams: { crm: { transport: 'streamable-http', url: crm.url } },
      gateway: { auditStore: new TimelineStore(new SqliteAuditStore(dbPath), timeline) },
    });
    const headers = await fx.headersFor('alice');
    aliceToken = headers.authorization!.slice('Bearer '.length);
    sessionId = await openSession(fx.gateway.urlFor('crm'), headers);
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  for (const c of CALLS) {
    it(`alice ${c.tool}(${JSON.stringify(c.args)}) → ${c.decision}: the decision row is written first${c.decision === 'allow' ? ', then forwarded' : ', nothing forwarded'}`, async () => {
      const mark = timeline.length;
      const req = toolCall(c.tool, c.args);
      const r = await postJson(
        fx.gateway.urlFor('crm'),
        { 'x-api-key': fx.apiKey, authorization: `Bearer ${aliceToken}` },
        req,
        sessionId,
      );
      if (c.decision === 'allow') rpcResult(r);
      else assert.equal(rpcError(r).code, -32003);
      assert.deepEqual(
        timeline.slice(mark),
        c.decision === 'allow'
          ? [`audit tools/call ${c.tool} allow`, 'upstream POST /mcp']
          : [`audit tools/call ${c.tool} deny`],
      );

      const decision = (await fx.gateway.runtime.audit.query({ kind: 'decision', limit: 1 }))[0]!;
      assert.equal(decision.ts <= Date.now(), true);
      // No keep rule in this config: every argument value is a marker; the digest still tells calls apart.
      const { args, argsDigest, policyVersion, instanceId, userScopes, userClaims, ...rest } = decision;
      // What a policy replay needs: the token's scopes, and the claims the policy reads (absent ones named).
      assert.equal(userScopes, 'mcp:tools crm:read crm:write');
      assert.deepEqual(JSON.parse(userClaims!), { claims: ALICE_CLAIMS, absent: [] });
      // Every record names the instance that wrote it (default: host and pid).
      assert.equal(instanceId, `${hostname()}-${process.pid}`);
      assert.equal(
        args,
        JSON.stringify(
          Object.fromEntries(Object.entries(c.args).map(([k, v]) => [k, `[redacted string ${String(v).length}]`])),
        ),
      );
      assert.match(argsDigest ?? '', /^[0-9a-f]{64}$/);
      assert.equal(typeof policyVersion, 'string');
      assert.deepEqual(
        { ...rest, ts: 0, callId: 'x', reason: 'x', seq: 0, prevHash: 'x', hash: 'x' },
        {
          seq: 0,
          prevHash: 'x',
          hash: 'x',
          ts: 0,
          kind: 'decision',
          callId: 'x',
          reason: 'x',
          route: 'crm',
          upstream: 'crm',
          transport: 'streamable-http',
          clientId: 'agent',
          clientMethod: 'api-key',
          credentialId: 'k1',
          userIssuer: fx.idp.issuer,
          userSubject: 'alice',
          tokenFingerprint: fingerprint(aliceToken),
          sessionFingerprint: fingerprint(sessionId),
          method: 'tools/call',
          target: c.tool,
          decision: c.decision,
          ruleIds: c.ruleIds,
          downstreamStrategy: 'none',
          // A refusal names the message step that made it.
          ...(c.decision === 'deny' ? { refusedBy: 'authorize' } : {}),
        },
      );
      assert.match(decision.callId!, /^[0-9a-f-]{36}$/);
      assert.match(decision.hash, /^[0-9a-f]{64}$/, 'the record is chained');
      const outcome = (await fx.gateway.runtime.audit.query({ kind: 'outcome', limit: 1000 })).filter(
        (e) => e.callId === decision.callId,
      );
      if (c.decision === 'allow') {
        assert.equal(outcome.length, 1);
        assert.equal(outcome[0]!.outcome, 'ok');
        assert.equal(typeof outcome[0]!.latencyMs, 'number');
      } else {
        assert.equal(outcome.length, 0, 'a denied call has no outcome: it went nowhere');
      }
    });
  }

  it('authentication failures are audited without the presented credential', async () => {
    const url = fx.gateway.urlFor('crm');
    const attempts: Array<[Record<string, string>, string]> = [
      [{ 'x-api-key': BAD_KEY, authorization: `Bearer ${aliceToken}` }, 'client_auth_invalid'],
      [{ 'x-api-key': fx.apiKey, authorization: `Bearer ${BAD_TOKEN}` }, 'user_token_invalid'],
      [{ 'x-api-key': fx.apiKey }, 'user_token_required'],
    ];
    for (const [headers, code] of attempts) {
      const r = await postJson(url, headers, rpc('tools/list'), sessionId);
      assert.equal(r.status, 401);
      assertNoLeak(r.text, [BAD_KEY, BAD_TOKEN, aliceToken, fx.apiKey]);
      const row = (await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 1 }))[0]!;
      assert.ok(row.reason!.startsWith(`${code}:`), row.reason);
    }
  });

  it('no column of any row holds a token, API key, session id or argument value (read straight from the SQLite file)', () => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    let rows: Array<Record<string, unknown>>;
    try {
      rows = db.prepare('SELECT * FROM audit_events').all() as Array<Record<string, unknown>>;
    } finally {
      db.close();
    }
    assert.ok(rows.length >= CALLS.length * 1.5, `only ${rows.length} rows`);
    const kinds = new Set(rows.map((r) => r.kind));
    for (const k of ['lifecycle', 'session', 'decision', 'outcome', 'auth-failure'])
      assert.ok(kinds.has(k), `no ${k} row`);
    const forbidden: Array<[string, string]> = [
      ["alice's token", aliceToken],
      ["alice's token signature", aliceToken.split('.')[2]!],
      ["the agent's API key", fx.apiKey],
      ["the other agent's API key", fx.otherApiKey],
      ['a forged API key', BAD_KEY],
      ['a forged token', BAD_TOKEN],
      ['the session id', sessionId],
      ['Bearer', 'Bearer'],
      ...ARG_VALUES.map((v): [string, string] => ['an argument value', v]),
      ['a denied customer id', 'c-203'],
      ['a denied customer id', 'c-204'],
      ['an argument value', 'c-100'],
      ['an argument value', 'c-101'],
    ];
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || typeof value === 'number') continue;
        // alice's own claims list her customers by design (they are what the policy read); checked exactly instead.
        if (column === 'user_claims') {
          assert.equal(value, JSON.stringify({ claims: ALICE_CLAIMS, absent: [] }));
          continue;
        }
        for (const [what, secret] of forbidden)
          assert.ok(
            !String(value).includes(secret),
            `${what} appears in column ${column} of a ${String(row.kind)} row`,
          );
      }
    }
  });
});

describe('an audit store that cannot write makes every call fail closed', () => {
  const upstreamRequests: string[] = [];
  const logs: string[] = [];
  let crm: CrmHttpServer;
  let store: FlakyStore;
  let fx: Fixture;
  let url: string;
  let alice: Record<string, string>;

  before(async () => {
    crm = await startCrmHttp({ onRequest: (i) => upstreamRequests.push(`${i.method} ${i.path}`) });
    store = new FlakyStore();
    fx = await startFixture({
      upstreams: { crm: { transport: 'streamable-http', url: crm.url } },
      gateway: { auditStore: store, log: (l) => logs.push(l) },
    });
    url = fx.gateway.urlFor('crm');
    alice = await fx.headersFor('alice');
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  const secrets = () => [fx.apiKey, alice.authorization!.slice(7), 'SQLITE_FULL', 'disk is full'];

  it('initialize is refused: JSON-RPC -32603, no session id, no session kept, nothing sent upstream', async () => {
    store.failing = true;
    try {
      const before = upstreamRequests.length;
      const r = await postJson(url, alice, INITIALIZE);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: INITIALIZE.id, error: AUDIT_REFUSED });
      assert.equal(r.headers['mcp-session-id'], undefined);
      assertNoLeak(r.text, secrets());
      assert.equal(fx.gateway.runtime.sessions.size, 0);
      // The official SDK client sees the same refusal.
      await assert.rejects(connectStreamable(url, alice), (err: unknown) => {
        assert.ok(err instanceof McpError, String(err));
        assert.equal(err.code, AUDIT_REFUSED.code);
        assert.match(err.message, /audit log unavailable/);
        return true;
      });
      assert.equal(fx.gateway.runtime.sessions.size, 0);
      assert.deepEqual(upstreamRequests.slice(before), []);
      assert.ok(
        logs.some((l) => l.startsWith('audit write failed: ') && l.includes('SQLITE_FULL')),
        'the operator is told, with the cause',
      );
    } finally {
      store.failing = false;
    }
    // Positive control: with the store back, the same client connects and calls.
    const client = await connectStreamable(url, alice);
    try {
      const res = await client.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
      assert.equal((res.structuredContent as { owner: string }).owner, 'alice');
    } finally {
      await client.close();
    }
  });

  it('on an open session every message is refused while the store fails, then served again when it recovers', async () => {
    const sid = await openSession(url, alice);
    // Batches exist in 2025-03-26, not in 2025-06-18 and later: the batch goes on a session of that version.
    const batchSid = await openSession(url, alice, '2025-03-26');
    const MESSAGES = [
      toolCall('get_customer', { customer_id: 'c-100' }),
      toolCall('get_customer', { customer_id: 'c-200' }),
      rpc('tools/list'),
      rpc('ping'),
      rpc('foo/bar'),
    ];
    store.failing = true;
    try {
      const before = upstreamRequests.filter((x) => x.startsWith('POST')).length;
      for (const m of MESSAGES) {
        const r = await postJson(url, alice, m, sid);
        // One call: the outage is the HTTP answer too (503, Retry-After); in a batch each call carries it (below).
        assert.equal(r.status, 503, r.text);
        assert.equal(r.headers['retry-after'], '1');
        assert.deepEqual(r.json, { jsonrpc: '2.0', id: m.id, error: AUDIT_REFUSED }, String(m.method));
        assertNoLeak(r.text, secrets());
      }
      const batch = await postJson(url, alice, MESSAGES.slice(0, 2), batchSid);
      assert.deepEqual(
        batch.json,
        MESSAGES.slice(0, 2).map((m) => ({ jsonrpc: '2.0', id: m.id, error: AUDIT_REFUSED })),
      );
      // A notification cannot be answered; it is acknowledged and dropped, not forwarded.
      assert.equal(
        (await postJson(url, alice, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid)).status,
        202,
      );
      // Refusals that do not depend on the audit log are still the right refusals.
      assert.equal((await postJson(url, { 'x-api-key': fx.apiKey }, rpc('ping'), sid)).status, 401);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(upstreamRequests.filter((x) => x.startsWith('POST')).length, before, 'nothing reached the upstream');
    } finally {
      store.failing = false;
    }
    const ok = await postJson(url, alice, toolCall('get_customer', { customer_id: 'c-100' }), sid);
    assert.equal((rpcResult(ok).structuredContent as { owner: string }).owner, 'alice');
  });

  it('legacy SSE: the stream opens, but every message on it is refused while the store fails', async () => {
    const stream = await rawStream(`${fx.gateway.baseUrl}/mcp/crm/sse`, alice);
    try {
      const messages = new URL((await stream.nextEvent()).data, fx.gateway.baseUrl).href;
      const before = upstreamRequests.length;
      store.failing = true;
      try {
        assert.equal((await postJson(messages, alice, INITIALIZE)).status, 202);
        assert.deepEqual(JSON.parse((await stream.nextEvent()).data), {
          jsonrpc: '2.0',
          id: INITIALIZE.id,
          error: AUDIT_REFUSED,
        });
        assert.deepEqual(upstreamRequests.slice(before), []);
      } finally {
        store.failing = false;
      }
      assert.equal((await postJson(messages, alice, INITIALIZE)).status, 202);
      const init = JSON.parse((await stream.nextEvent()).data) as { result?: { serverInfo: { name: string } } };
      assert.equal(init.result?.serverInfo.name, 'behalf-demo-crm');
    } finally {
      stream.close();
    }
  });
});
