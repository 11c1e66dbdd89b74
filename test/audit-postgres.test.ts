/**
 * The fleet's audit trail in PostgreSQL (issue 14, docs/architecture.md
 * §10), on the machine's real PostgreSQL, in a database each run creates
 * and drops: three gateway processes append to one chain that
 * `behalf audit verify` passes, every call with exactly one decision
 * record naming its instance; the CLI reads the trail (tail, query,
 * export, verify by --postgres and by --config); an SQLite trail migrated
 * into PostgreSQL keeps its hashes and verifies, and the fleet appends
 * after it; a record tried again after a COMMIT without answer is found
 * by its rid, not stored twice.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { AuditLog } from '../src/audit/audit-log.js';
import { prepare } from '../src/audit/chain-writer.js';
import { appendBatch, type PgPending } from '../src/audit/pg-chain.js';
import { createPgSchema, normalizeForPg } from '../src/audit/pg-schema.js';
import { PgAuditStore } from '../src/audit/pg-store.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import {
  aliceHeaders,
  startGatewayProcess,
  THIS_ROOT,
  timedCall,
  type GatewayProcess,
  type GatewaySetup,
} from './helpers/gateway-process.js';
import { sampleDecision } from './helpers/audit-appender.js';
import { createTestDb, pgGatewaySetup, type TestDb } from './helpers/pg-db.js';
import { openSession } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

const INSTANCES = 3;
const CONCURRENT = 16;
const CALLS_EACH = 4;

function cli(...args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(THIS_ROOT, 'src/cli/main.js'), 'audit', ...args], {
    encoding: 'utf8',
    env: process.env,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('three gateway processes, one audit trail in PostgreSQL', () => {
  let db: TestDb;
  const setups: GatewaySetup[] = [];
  const gws: GatewayProcess[] = [];

  before(async () => {
    db = await createTestDb();
    for (let i = 0; i < INSTANCES; i++) {
      // A generous budget: nine processes share two cores here, and this test is about the chain, not the budget.
      setups.push(await pgGatewaySetup(tempDir(), db.url, 2000));
      gws.push(await startGatewayProcess(setups[i]!, ['--instance-id', `gw-${i}`]));
    }
  });
  after(async () => {
    for (const g of gws) await g.stop();
    for (const s of setups) await s.idp.close();
    await db?.drop();
  });

  it(`${INSTANCES} instances × ${CONCURRENT} concurrent callers: one chain that verifies, one decision per call, each naming its instance`, async () => {
    const failures: string[] = [];
    const results = await Promise.all(
      gws.map(async (gw, i) => {
        const headers = await aliceHeaders(setups[i]!, gw.url);
        const session = await openSession(gw.url, headers).catch((err: unknown) => {
          throw new Error(`${gw.url}: ${String(err)}\n${gw.log.join('\n')}`);
        });
        const oks = await Promise.all(
          Array.from({ length: CONCURRENT }, async () => {
            let ok = 0;
            for (let c = 0; c < CALLS_EACH; c++) {
              const { r } = await timedCall(gw.url, headers, session);
              if ((r.json as { result?: unknown } | undefined)?.result) ok++;
              else failures.push(`${gw.url} ${r.status} ${r.text.slice(0, 300)}`);
            }
            return ok;
          }),
        );
        return oks.reduce((a, b) => a + b, 0);
      }),
    );
    assert.deepEqual(
      results,
      Array(INSTANCES).fill(CONCURRENT * CALLS_EACH),
      `every call succeeds: ${failures.slice(0, 3).join('\n')}\n${gws.map((g) => g.log.slice(-5).join('\n')).join('\n')}`,
    );
    for (const g of gws) await g.stop();

    const v = cli('verify', '--postgres', db.url);
    assert.equal(v.status, 0, v.out + v.err);
    assert.match(v.out, /^ok: \d+ records, head \d+ [0-9a-f]{64}\n$/);
    const per = await db.query<{ instance_id: string; n: number; callers: number }>(
      `SELECT instance_id, count(*)::int AS n, count(DISTINCT call_id)::int AS callers FROM audit_events
        WHERE kind = 'decision' AND method = 'tools/call' GROUP BY instance_id ORDER BY instance_id`,
    );
    const expected = CONCURRENT * CALLS_EACH;
    assert.deepEqual(
      per,
      Array.from({ length: INSTANCES }, (_, i) => ({ instance_id: `gw-${i}`, n: expected, callers: expected })),
    );
    const outcomes = await db.query<{ n: number }>(
      `SELECT count(DISTINCT o.call_id)::int AS n FROM audit_events o JOIN audit_events d
         ON d.call_id = o.call_id AND d.kind = 'decision' AND d.seq < o.seq
        WHERE o.kind = 'outcome' AND d.method = 'tools/call'`,
    );
    assert.equal(outcomes[0]!.n, INSTANCES * expected, 'each call has its outcome, after its decision');
    const seqs = await db.query<{ n: number; max: string }>(
      'SELECT count(*)::int AS n, max(seq) AS max FROM audit_events',
    );
    assert.equal(seqs[0]!.n, Number(seqs[0]!.max), 'seq 1..N with no gap and no duplicate');
  });

  it('behalf audit tail, query, export and verify read the trail by --postgres and by --config', () => {
    const tail = cli('tail', '-n', '3', '--json', '--postgres', db.url);
    assert.equal(tail.status, 0, tail.err);
    const last = tail.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; hash: string });
    assert.equal(last.length, 3);
    assert.ok(last[0]!.seq < last[1]!.seq && last[1]!.seq < last[2]!.seq);

    const q = cli('query', '--json', '--postgres', db.url, '--user', 'alice', '--decision', 'allow', '--limit', '5');
    assert.equal(q.status, 0, q.err);
    const rows = q.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { userSubject: string; decision: string });
    assert.equal(rows.length, 5);
    assert.ok(rows.every((r) => r.userSubject === 'alice' && r.decision === 'allow'));

    const file = join(tempDir(), 'trail.jsonl');
    const exp = cli('export', '--postgres', db.url, '--out', file);
    assert.equal(exp.status, 0, exp.err);
    const fromFile = cli('verify', '--file', file);
    const byConfig = cli('verify', '--config', setups[0]!.config);
    process.env.BEHALF_TEST_AUDIT_PG = db.url;
    const byEnv = cli('verify', '--postgres', 'env:BEHALF_TEST_AUDIT_PG');
    delete process.env.BEHALF_TEST_AUDIT_PG;
    for (const r of [fromFile, byConfig, byEnv]) assert.equal(r.status, 0, r.out + r.err);
    const head = (s: string) => /head (\d+ [0-9a-f]{64})/.exec(s)?.[1];
    assert.equal(head(byConfig.out), `${last[2]!.seq} ${last[2]!.hash}`);
    assert.equal(head(fromFile.out), head(byConfig.out));
    assert.equal(head(byEnv.out), head(byConfig.out));
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, last[2]!.seq);

    const both = cli('verify', '--postgres', db.url, '--db', 'x.db');
    assert.equal(both.status, 2);
    assert.match(both.err, /give one of --config, --db or --postgres/);
  });
});

describe('behalf audit migrate: an SQLite trail into PostgreSQL', () => {
  const dbs: TestDb[] = [];
  after(async () => {
    for (const d of dbs) await d.drop();
  });

  it('keeps every hash: verify gives the same head, and the fleet appends after it', async () => {
    const dir = tempDir();
    const file = join(dir, 'audit.db');
    const sqlite = new SqliteAuditStore(file);
    const digestKey = await sqlite.secret('args-digest');
    for (let i = 0; i < 30; i++)
      sqlite.appendSync({
        ...sampleDecision('old', i),
        latencyMs: i / 7,
        reason: `déjà vu ✓ ${i}`,
        ...(i % 3 === 0 ? { refusedBy: 'policy', continuationOf: `c-${i}` } : {}),
        ...(i % 2 === 0 ? { instanceId: 'old-host-1' } : {}),
      });
    await sqlite.close();
    const source = cli('verify', '--db', file);
    assert.equal(source.status, 0, source.out);

    const target = await createTestDb();
    dbs.push(target);
    const m = cli('migrate', '--from', file, '--to-postgres', target.url);
    assert.equal(m.status, 0, m.out + m.err);
    const head = (s: string) => /head (\d+ [0-9a-f]{64})/.exec(s)?.[1];
    assert.equal(head(m.out), head(source.out));
    const migrated = cli('verify', '--postgres', target.url);
    assert.equal(migrated.status, 0, migrated.out);
    assert.equal(migrated.out, source.out, 'the same records and head');
    const key = await target.query<{ value: Buffer }>("SELECT value FROM audit_meta WHERE name = 'args-digest'");
    assert.deepEqual(key[0]!.value, digestKey, 'argument digests stay comparable');

    const store = new PgAuditStore(target.url);
    await store.open();
    const audit = new AuditLog(store, undefined, 'new-gw');
    for (let i = 0; i < 5; i++) await audit.mustAppend(sampleDecision('new', i));
    await audit.close();
    const after = cli('verify', '--postgres', target.url);
    assert.equal(after.status, 0, after.out);
    assert.match(after.out, /^ok: 35 records, head 35 /);

    const again = cli('migrate', '--from', file, '--to-postgres', target.url);
    assert.equal(again.status, 2, again.out + again.err);
    assert.match(again.err, /already holds an audit trail \(35 records\)/);
  });

  it('refuses a source that does not verify, and copies nothing', async () => {
    const file = join(tempDir(), 'audit.db');
    const sqlite = new SqliteAuditStore(file);
    for (let i = 0; i < 5; i++) sqlite.appendSync(sampleDecision('old', i));
    await sqlite.close();
    const raw = new Database(file);
    raw.prepare("UPDATE audit_events SET reason = 'edited' WHERE seq = 3").run();
    raw.close();
    const target = await createTestDb();
    dbs.push(target);
    const m = cli('migrate', '--from', file, '--to-postgres', target.url);
    assert.equal(m.status, 1, m.out + m.err);
    assert.match(m.out, /^FAILED: .* does not verify; nothing was migrated\nseq 3: edited/);
    const tables = await target.query("SELECT 1 FROM pg_tables WHERE tablename = 'audit_events'");
    assert.equal(tables.length, 0);
  });
});

describe('a record tried again after a COMMIT that got no answer', () => {
  let db: TestDb;
  let client: pg.Client;
  before(async () => {
    db = await createTestDb();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await createPgSchema(client);
  });
  after(async () => {
    await client?.end();
    await db?.drop();
  });

  it('is found by its rid and answered with its stored link, not chained twice', async () => {
    const p: PgPending = {
      prepared: prepare(normalizeForPg(sampleDecision('x', 1))),
      rid: 'rid-1',
      retried: false,
      open: true,
    };
    const first = (await appendBatch(client, [p])).get(p);
    p.retried = true;
    const other: PgPending = { ...p, prepared: prepare(normalizeForPg(sampleDecision('x', 2))), rid: 'rid-2' };
    const links = await appendBatch(client, [p, other]);
    assert.deepEqual(links.get(p), first);
    assert.equal(links.get(other)![0], 2);
    const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events');
    assert.equal(rows[0]!.n, 2);
  });
});
