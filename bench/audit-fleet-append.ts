/**
 * What an audit append costs a fleet: 3 writer processes (as 3 gateway
 * instances) × 16 concurrent appenders each, every append awaited as a
 * call awaits its decision, into one trail — PostgreSQL (one chain, appends
 * serialised on the head row, group commit per instance) against the
 * embedded SQLite writer (3 processes on one file) in the same run, rounds
 * interleaved. Reports per-append latency (median, p99) and records per
 * second for the whole fleet, and checks that each trail verifies.
 *
 *   npm run build && node dist/bench/audit-fleet-append.js   (BENCH_FLEET_PER=… appends per appender)
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { verifyChain } from '../src/audit/chain.js';
import type { AuditStore } from '../src/audit/event.js';
import { PgAuditStore } from '../src/audit/pg-store.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { startAppender, type AppenderResult } from '../test/helpers/audit-appender.js';
import { createTestDb } from '../test/helpers/pg-db.js';
import { tempDir } from '../test/helpers/tmp.js';

const INSTANCES = 3;
const CONCURRENCY = 16;
const PER = Number(process.env.BENCH_FLEET_PER ?? 100);
const ROUNDS = Number(process.env.BENCH_FLEET_ROUNDS ?? 3);

type Kind = 'pg' | 'sqlite' | 'sqlite-full';

export interface FleetFigures {
  store: Kind;
  medianMs: number;
  p99Ms: number;
  perSecond: number;
  failures: number;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function round(store: Kind, target: string): Promise<FleetFigures> {
  const apps = await Promise.all(
    Array.from({ length: INSTANCES }, (_, i) =>
      startAppender({
        store: store === 'pg' ? 'pg' : 'sqlite',
        durability: store === 'sqlite-full' ? 'full' : 'normal',
        target,
        instanceId: `${store}-${i}`,
        concurrency: CONCURRENCY,
        perAppender: PER,
        budgetMs: 60_000,
      }),
    ),
  );
  for (const a of apps) a.go();
  const results: AppenderResult[] = await Promise.all(apps.map((a) => a.result));
  const all = results.flatMap((r) => r.latenciesMs);
  const wall = Math.max(...results.map((r) => r.wallMs));
  return {
    store,
    medianMs: pct(all, 50),
    p99Ms: pct(all, 99),
    perSecond: (all.length / wall) * 1000,
    failures: results.reduce((n, r) => n + r.failures.length, 0),
  };
}

async function verified(store: AuditStore, open?: () => Promise<void>): Promise<string> {
  await open?.();
  try {
    const r = await verifyChain(store.records());
    return r.ok ? `verifies (${r.count} records)` : `DOES NOT VERIFY: ${r.problems.length} problems`;
  } finally {
    await store.close();
  }
}

export async function benchFleetAppend(): Promise<{
  pg: FleetFigures[];
  sqlite: FleetFigures[];
  sqliteFull: FleetFigures[];
  checks: string[];
}> {
  const db = await createTestDb();
  const dir = tempDir('behalf-bench-fleet-');
  const file = join(dir, 'audit.db');
  const fullFile = join(dir, 'audit-full.db');
  const out = {
    pg: [] as FleetFigures[],
    sqlite: [] as FleetFigures[],
    sqliteFull: [] as FleetFigures[],
    checks: [] as string[],
  };
  try {
    for (let i = 0; i < ROUNDS; i++) {
      out.sqlite.push(await round('sqlite', file));
      out.sqliteFull.push(await round('sqlite-full', fullFile));
      out.pg.push(await round('pg', db.url));
    }
    out.checks.push(`sqlite: ${await verified(new SqliteAuditStore(file, { readonly: true }))}`);
    out.checks.push(`sqlite full: ${await verified(new SqliteAuditStore(fullFile, { readonly: true }))}`);
    const pg = new PgAuditStore(db.url, { readonly: true });
    out.checks.push(`pg: ${await verified(pg, () => pg.open())}`);
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const median = (xs: number[]) => pct(xs, 50);

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchFleetAppend();
  const line = (name: string, f: FleetFigures[]) =>
    `${name.padEnd(12)} median ${median(f.map((x) => x.medianMs)).toFixed(2)} ms  p99 ${median(f.map((x) => x.p99Ms)).toFixed(2)} ms  ${median(f.map((x) => x.perSecond)).toFixed(0)} records/s  failures ${f.reduce((n, x) => n + x.failures, 0)}`;
  process.stdout.write(
    `audit append, ${INSTANCES} processes × ${CONCURRENCY} concurrent appenders × ${PER} each, median of ${ROUNDS} rounds:\n${line('sqlite', r.sqlite)}\n${line('sqlite full', r.sqliteFull)}\n${line('postgres', r.pg)}\n${r.checks.join('\n')}\n`,
  );
}
