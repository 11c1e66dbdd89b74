/**
 * What one audit append costs on the request path: `appendSync` (canonical
 * form, SHA-256, one INSERT in WAL mode) timed per call on a file database,
 * for both durabilities. `full` fsyncs the WAL on every commit, so it
 * measures this machine's disk as much as our code.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AuditEvent } from '../src/audit/event.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { tempDir } from '../test/helpers/tmp.js';
import { sampleDecision } from '../test/helpers/audit-appender.js';

const WARMUP = 1000;

export interface AppendTimes {
  medianUs: number;
  p99Us: number;
  meanUs?: number;
  /**
   * Event-loop (main-thread) busy time per record: what an append costs the
   * thread that also serves every request, whatever another thread does.
   */
  mainThreadUs?: number;
}

/** A decision record as large as a real one, with a call id as long as a UUID (the shape the gateway writes). */
function decision(i: number): AuditEvent {
  return { ...sampleDecision('bench', i), callId: `0f8fad5b-d9cb-469f-a165-${String(i).padStart(12, '0')}` };
}

async function measure(durability: 'normal' | 'full', n: number): Promise<AppendTimes> {
  const dir = tempDir('behalf-bench-audit-');
  const store = new SqliteAuditStore(join(dir, 'audit.db'), { durability });
  try {
    for (let i = 0; i < WARMUP; i++) store.appendSync(decision(i));
    const times = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const e = decision(i);
      const start = process.hrtime.bigint();
      store.appendSync(e);
      times[i] = Number(process.hrtime.bigint() - start) / 1000;
    }
    times.sort();
    const at = (p: number) => Math.round(times[Math.min(n - 1, Math.floor(p * n))]! * 10) / 10;
    return { medianUs: at(0.5), p99Us: at(0.99) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Group commit: `concurrency` calls append at once (as concurrent requests
 * do), so they share one transaction; the figure is the batch's time divided
 * by its records. With concurrency 1 it is one awaited append per call.
 */
async function measureGrouped(durability: 'normal' | 'full', n: number, concurrency: number): Promise<AppendTimes> {
  const dir = tempDir('behalf-bench-audit-');
  // A budget far beyond any commit: this measures what an append costs, not whether a slow fsync is refused.
  const store = new SqliteAuditStore(join(dir, 'audit.db'), { durability, writeBudgetMs: 60_000 });
  try {
    for (let i = 0; i < WARMUP; i++) await store.append(decision(i));
    const rounds = Math.max(1, Math.floor(n / concurrency));
    const times = new Float64Array(rounds);
    const elu = performance.eventLoopUtilization();
    for (let r = 0; r < rounds; r++) {
      const events = Array.from({ length: concurrency }, (_, k) => decision(r * concurrency + k));
      const start = process.hrtime.bigint();
      await Promise.all(events.map((e) => store.append(e)));
      times[r] = Number(process.hrtime.bigint() - start) / 1000 / concurrency;
    }
    const busyUs = performance.eventLoopUtilization(elu).active * 1000;
    const meanUs = times.reduce((a, b) => a + b, 0) / rounds;
    times.sort();
    const at = (p: number) => Math.round(times[Math.min(rounds - 1, Math.floor(p * rounds))]! * 10) / 10;
    return {
      medianUs: at(0.5),
      p99Us: at(0.99),
      meanUs: Math.round(meanUs * 10) / 10,
      mainThreadUs: Math.round((busyUs / (rounds * concurrency)) * 10) / 10,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchAuditAppend(n = 20000): Promise<Record<string, AppendTimes>> {
  return {
    'normal, one call at a time': await measureGrouped('normal', n, 1),
    'normal, 16 concurrent calls (group commit)': await measureGrouped('normal', n, 16),
    'full, one call at a time': await measureGrouped('full', Math.min(n, 5000), 1),
    'full, 16 concurrent calls (group commit)': await measureGrouped('full', n, 16),
    'normal, appendSync (no event-loop hop)': await measure('normal', n),
  };
}

// Run directly: node dist/bench/audit-append.js [N]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 20000);
  console.log(JSON.stringify(await benchAuditAppend(n), null, 2));
}
