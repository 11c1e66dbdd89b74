/**
 * The fleet's audit trail when PostgreSQL goes away (issue 14 item 2), on
 * the machine's real PostgreSQL behind a TCP proxy this test stops and
 * restarts (the machine's own server is never touched):
 * - a gateway process refuses every call with "audit log unavailable"
 *   while the proxy is down, /readyz says 503 `audit store unreachable`,
 *   the log says AUDIT STORE UNREACHABLE once, and service resumes by
 *   itself when the proxy is back; the trail verifies, no call has two
 *   decision records, and every call that succeeded has its decision and
 *   its outcome. Positive control: the same calls succeed before and after;
 * - an outcome queued when the connection drops is written once, after;
 * - every allowed call's decision is committed in PostgreSQL (seen by
 *   another connection) before the upstream receives the call.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCrmHttp, type CrmHttpServer } from '../demo/crm/http.js';
import { AuditLog } from '../src/audit/audit-log.js';
import { PgAuditStore } from '../src/audit/pg-store.js';
import { sampleDecision } from './helpers/audit-appender.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import {
  aliceHeaders,
  startGatewayProcess,
  THIS_ROOT,
  timedCall,
  timedGet,
  type GatewayProcess,
  type GatewaySetup,
} from './helpers/gateway-process.js';
import { createTestDb, pgGatewaySetup, type TestDb } from './helpers/pg-db.js';
import { openSession, postJson, rpcResult, toolCall, type RawResponse } from './helpers/raw-http.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { tempDir } from './helpers/tmp.js';

const AUDIT_REFUSED = { code: -32603, message: 'Request refused: audit log unavailable' };
const result = (r: RawResponse) => (r.json as { result?: unknown } | undefined)?.result;
const error = (r: RawResponse) => (r.json as { error?: unknown } | undefined)?.error;
const PG = { host: '127.0.0.1', port: 5432 };

function verify(url: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(THIS_ROOT, 'src/cli/main.js'), 'audit', 'verify', '--postgres', url], {
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const by = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > by) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL unreachable under a gateway process', () => {
  let db: TestDb;
  let proxy: TcpProxy;
  let setup: GatewaySetup;
  let gw: GatewayProcess;

  before(async () => {
    db = await createTestDb();
    proxy = await startTcpProxy(PG);
    setup = await pgGatewaySetup(tempDir(), db.urlVia(proxy.port), 500);
    gw = await startGatewayProcess(setup, ['--instance-id', 'outage-gw']);
  });
  after(async () => {
    await gw?.stop();
    await setup?.idp.close();
    await proxy?.close();
    await db?.drop();
  });

  it('refuses calls while it is gone, says so loudly, resumes by itself, and the trail verifies without duplicates', async (t) => {
    const headers = await aliceHeaders(setup, gw.url);
    const session = await openSession(gw.url, headers);
    let succeeded = 0;
    for (let i = 0; i < 10; i++) {
      assert.ok(result((await timedCall(gw.url, headers, session)).r), 'call before the outage');
      succeeded++;
    }
    assert.equal((await timedGet(`${gw.origin}/readyz`)).r.status, 200);

    await proxy.stop();
    const refused: RawResponse[] = [];
    for (let i = 0; i < 10; i++) refused.push((await timedCall(gw.url, headers, session)).r);
    for (const r of refused) assert.deepEqual(error(r), AUDIT_REFUSED, `refused while unreachable: ${r.text}`);
    t.diagnostic(`refused calls: HTTP ${[...new Set(refused.map((r) => r.status))].join(', ')}`);
    const notReady = (await timedGet(`${gw.origin}/readyz`)).r;
    assert.equal(notReady.status, 503);
    const { status, reason } = notReady.json as { status?: string; reason?: string };
    assert.deepEqual({ status, reason }, { status: 'not ready', reason: 'audit store unreachable' });
    const loud = gw.log.filter((l) => l.startsWith('AUDIT STORE UNREACHABLE: PostgreSQL 127.0.0.1:'));
    assert.equal(loud.length, 1, gw.log.join('\n'));
    assert.ok(!loud[0]!.includes('postgres://'), 'the log names host, port and database, never the URL');

    await proxy.start();
    await until('a call succeeds again', async () => !!result((await timedCall(gw.url, headers, session)).r));
    succeeded++;
    for (let i = 0; i < 10; i++) {
      assert.ok(result((await timedCall(gw.url, headers, session)).r), 'call after the outage');
      succeeded++;
    }
    assert.equal((await timedGet(`${gw.origin}/readyz`)).r.status, 200);
    assert.ok(gw.log.some((l) => l.includes('is reachable again')));
    await gw.stop();

    const v = verify(db.url);
    assert.equal(v.status, 0, v.out);
    const decisions = await db.query<{ call_id: string; n: number }>(
      `SELECT call_id, count(*)::int AS n FROM audit_events WHERE kind = 'decision' GROUP BY call_id HAVING count(*) > 1`,
    );
    assert.deepEqual(decisions, [], 'no call has two decision records');
    const outcomes = await db.query<{ call_id: string; n: number }>(
      `SELECT call_id, count(*)::int AS n FROM audit_events WHERE kind = 'outcome' GROUP BY call_id HAVING count(*) > 1`,
    );
    assert.deepEqual(outcomes, [], 'no call has two outcome records');
    const served = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events d JOIN audit_events o ON o.call_id = d.call_id AND o.kind = 'outcome'
        WHERE d.kind = 'decision' AND d.method = 'tools/call' AND d.decision = 'allow' AND d.seq < o.seq`,
    );
    assert.ok(served[0]!.n >= succeeded, `${served[0]!.n} decision+outcome pairs for ${succeeded} successful calls`);
  });
});

describe('an outcome queued when the connection drops', () => {
  let db: TestDb;
  let proxy: TcpProxy;
  before(async () => {
    db = await createTestDb();
    proxy = await startTcpProxy(PG);
  });
  after(async () => {
    await proxy?.close();
    await db?.drop();
  });

  it('is written once when PostgreSQL is back, while decisions are refused in between', async () => {
    const log: string[] = [];
    const store = new PgAuditStore(db.urlVia(proxy.port), { writeBudgetMs: 300, log: (l) => log.push(l) });
    await store.open();
    const audit = new AuditLog(store, undefined, 'queued');
    await audit.mustAppend(sampleDecision('q', 0));
    audit.tryAppend({ ...sampleDecision('q', 1), kind: 'outcome', outcome: 'ok' });
    await proxy.stop();
    await until('the store knows', () => !store.health().ready);
    await assert.rejects(audit.mustAppend(sampleDecision('q', 2)), { code: 'audit_unavailable' });
    await proxy.start();
    await until('the store is ready again', () => store.health().ready);
    await audit.mustAppend(sampleDecision('q', 3));
    await audit.close();
    const rows = await db.query<{ call_id: string }>('SELECT call_id FROM audit_events ORDER BY seq');
    assert.deepEqual(
      rows.map((r) => r.call_id),
      ['q-0', 'q-1', 'q-3'],
    );
    assert.equal(verify(db.url).status, 0);
    assert.ok(log.some((l) => l.startsWith('AUDIT STORE UNREACHABLE')));
  });
});

describe('a decision is committed in PostgreSQL before its call is forwarded', () => {
  let db: TestDb;
  let crm: CrmHttpServer;
  let watcher: Server;
  let fx: Fixture;
  /** For each tools/call the upstream received: how many allowed decisions another connection saw committed first. */
  const seen: number[] = [];

  before(async () => {
    db = await createTestDb();
    crm = await startCrmHttp();
    const crmUrl = new URL(crm.url);
    // In front of the CRM: on each tools/call, ask PostgreSQL (another connection) before letting the call through.
    watcher = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks);
        if (body.includes('"tools/call"')) {
          const rows = await db.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM audit_events WHERE kind = 'decision' AND method = 'tools/call' AND decision = 'allow'",
          );
          seen.push(rows[0]!.n);
        }
        const up = request(
          { host: crmUrl.hostname, port: crmUrl.port, path: req.url, method: req.method, headers: req.headers },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        up.end(body);
      });
    });
    await new Promise<void>((r) => watcher.listen(0, '127.0.0.1', () => r()));
    const port = (watcher.address() as { port: number }).port;
    const store = new PgAuditStore(db.url);
    await store.open();
    fx = await startFixture({
      upstreams: { crm: { transport: 'streamable-http', url: `http://127.0.0.1:${port}${crmUrl.pathname}` } },
      gateway: { auditStore: store, instanceId: 'before-forward' },
    });
  });
  after(async () => {
    await fx?.close();
    watcher?.closeAllConnections();
    await new Promise((r) => watcher?.close(r));
    await crm?.close();
    await db?.drop();
  });

  it('the upstream sees call n only after n allowed decisions are committed', async () => {
    const headers = await fx.headersFor('alice');
    const url = fx.gateway.urlFor('crm');
    const session = await openSession(url, headers);
    for (let i = 0; i < 5; i++)
      rpcResult(await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), session));
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  });
});
