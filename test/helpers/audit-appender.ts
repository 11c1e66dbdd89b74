/**
 * One writer of a fleet's audit trail as its own process: opens the store
 * (PostgreSQL or an SQLite file), says `ready`, waits for `go` on stdin,
 * then runs `concurrency` appenders that each append `perAppender` decision
 * records one after the other (each awaited, as a call awaits its
 * decision), and prints one JSON line: every append's latency and the
 * failures. Used by the fleet test and the append-cost benchmark.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent, AuditStore } from '../../src/audit/event.js';
import { PgAuditStore } from '../../src/audit/pg-store.js';
import { SqliteAuditStore } from '../../src/audit/sqlite-store.js';

const RUN_ENV = 'BEHALF_AUDIT_APPENDER';

export interface AppenderJob {
  store: 'pg' | 'sqlite';
  /** SQLite only: full fsyncs every commit, as PostgreSQL does by default (synchronous_commit = on). */
  durability?: 'normal' | 'full';
  /** PostgreSQL URL or SQLite file. */
  target: string;
  instanceId: string;
  concurrency: number;
  perAppender: number;
  budgetMs: number;
}

export interface AppenderResult {
  instanceId: string;
  latenciesMs: number[];
  failures: string[];
  wallMs: number;
}

/** A decision record as large as a real one. */
export function sampleDecision(instance: string, i: number): AuditEvent {
  return {
    ts: Date.now(),
    kind: 'decision',
    callId: `${instance}-${i}`,
    route: 'crm',
    upstream: 'crm',
    transport: 'streamable-http',
    clientId: 'agent',
    clientMethod: 'api-key',
    credentialId: 'k1',
    userIssuer: 'https://idp.example.com',
    userSubject: `user-${i % 100}`,
    tokenFingerprint: '3f2a9c0d1e7b6a54',
    sessionFingerprint: '9b1c7f3a2e4d6c80',
    method: 'tools/call',
    target: 'get_customer',
    args: '{"customer_id":"c-100","notes":"[redacted string 24]"}',
    argsDigest: 'ab'.repeat(32),
    decision: 'allow',
    ruleIds: ['reps-read-own'],
    reason: 'allowed by reps-read-own',
    policyVersion: 'cd'.repeat(8),
    downstreamStrategy: 'none',
  };
}

/** Starts the process; resolves with go() (starts appending) once its store is open, and the result. */
export async function startAppender(job: AppenderJob): Promise<{ go(): void; result: Promise<AppenderResult> }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, [RUN_ENV]: JSON.stringify(job) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let resolveResult!: (r: AppenderResult) => void;
  const result = new Promise<AppenderResult>((resolve, reject) => {
    resolveResult = resolve;
    void exited.then((code) => reject(new Error(`appender ${job.instanceId} exited (${code}) without a result`)));
  });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (l) => {
      if (l === 'ready') resolve();
      else if (l.startsWith('{')) resolveResult(JSON.parse(l) as AppenderResult);
    });
    void exited.then(() => reject(new Error(`appender ${job.instanceId} exited before it was ready`)));
  });
  return { go: () => child.stdin!.end('go\n'), result };
}

async function run(job: AppenderJob): Promise<void> {
  let store: AuditStore;
  if (job.store === 'pg') {
    const pg = new PgAuditStore(job.target, { writeBudgetMs: job.budgetMs });
    await pg.open();
    store = pg;
  } else {
    const sqlite = new SqliteAuditStore(job.target, { writeBudgetMs: job.budgetMs, durability: job.durability });
    await sqlite.startWriter();
    store = sqlite;
  }
  const audit = new AuditLog(store, () => undefined, job.instanceId);
  process.stdout.write('ready\n');
  await new Promise<void>((r) => createInterface({ input: process.stdin }).once('line', () => r()));
  const latenciesMs: number[] = [];
  const failures: string[] = [];
  const started = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      for (let i = 0; i < job.perAppender; i++) {
        const t = performance.now();
        try {
          await audit.mustAppend(sampleDecision(job.instanceId, n++));
          latenciesMs.push(performance.now() - t);
        } catch (err) {
          failures.push(String((err as Error).cause ?? err));
        }
      }
    }),
  );
  const wallMs = performance.now() - started;
  await audit.close();
  process.stdout.write(`${JSON.stringify({ instanceId: job.instanceId, latenciesMs, failures, wallMs })}\n`);
}

if (process.env[RUN_ENV]) await run(JSON.parse(process.env[RUN_ENV]) as AppenderJob);
