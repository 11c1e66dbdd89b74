/**
 * What the audit's hand-off to its writer thread costs per call, as the
 * gateway uses it: `connections` loops each await a decision (as a call
 * does before it is forwarded), wait an upstream's time, then append the
 * outcome without waiting (deferrable). Arrivals are spread over turns of
 * the event loop, as requests from many sockets are. Reported: CPU per call
 * of the main thread and of the writer thread (from /proc, so it is CPU,
 * not wall time, and a busy machine disturbs it less than latency), and
 * the system calls of the process when run under `strace -c -f`.
 *
 *   node dist/bench/audit-handoff.js [calls] [connections] [upstreamMs]
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AuditEvent } from '../src/audit/event.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { sampleDecision } from '../test/helpers/audit-appender.js';
import { tempDir } from '../test/helpers/tmp.js';
import { threadCpuMs } from './load/processes.js';

export interface HandoffCost {
  calls: number;
  wallMs: number;
  /** CPU per call by thread name (main, and the writer thread's name), ms. */
  cpuMsPerCall: Record<string, number>;
  /** Mean wait for a decision to be acknowledged, ms. */
  decisionWaitMs: number;
  /** Batches sent to the writer thread per call (each one a postMessage, a wake-up and a transaction). */
  batchesPerCall: number;
}

/** The writer's batch counter (a private field, read here only to report how much the hand-off groups). */
const batchesSent = (store: SqliteAuditStore) =>
  ((store as unknown as { thread: { nextId: number } }).thread.nextId ?? 1) - 1;

function outcome(decision: AuditEvent): AuditEvent {
  return { ...decision, kind: 'outcome', outcome: 'ok', latencyMs: 3 };
}

export async function benchAuditHandoff(calls = 20_000, connections = 16, upstreamMs = 8): Promise<HandoffCost> {
  const dir = tempDir('behalf-bench-handoff-');
  const store = new SqliteAuditStore(join(dir, 'audit.db'), { writeBudgetMs: 60_000 });
  await store.startWriter();
  try {
    let next = 0;
    let waited = 0;
    const loop = async (warm: boolean, count: number) => {
      while (next < count) {
        const i = next++;
        // Spread over turns: each call's request arrives on its own, as a socket's data does.
        await new Promise((r) => setTimeout(r, Math.random() * upstreamMs));
        const d = { ...sampleDecision('bench', i), callId: `call-${i}` };
        const t = performance.now();
        await store.append(d);
        if (!warm) waited += performance.now() - t;
        await new Promise((r) => setTimeout(r, Math.random() * upstreamMs));
        void store.append(outcome(d), { deferrable: true });
      }
    };
    await Promise.all(Array.from({ length: connections }, () => loop(true, 2000)));
    next = 0;
    const batches0 = batchesSent(store);
    const before = threadCpuMs(process.pid);
    const start = performance.now();
    await Promise.all(Array.from({ length: connections }, () => loop(false, calls)));
    const wallMs = performance.now() - start;
    const after = threadCpuMs(process.pid);
    const batches = batchesSent(store) - batches0;
    const cpuMsPerCall: Record<string, number> = {};
    for (const [name, ms] of after) {
      const per = (ms - (before.get(name) ?? 0)) / calls;
      if (per > 0) cpuMsPerCall[name] = Math.round(per * 10_000) / 10_000;
    }
    return {
      calls,
      wallMs: Math.round(wallMs),
      cpuMsPerCall,
      decisionWaitMs: Math.round((waited / calls) * 1000) / 1000,
      batchesPerCall: Math.round((batches / calls) * 1000) / 1000,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run directly: node dist/bench/audit-handoff.js [calls] [connections] [upstreamMs]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [calls, connections, upstreamMs] = process.argv.slice(2).map(Number);
  console.log(
    JSON.stringify(await benchAuditHandoff(calls || undefined, connections || undefined, upstreamMs), null, 2),
  );
}
