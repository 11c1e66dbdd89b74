/**
 * An outside process holds the audit database's write lock (a backup tool,
 * a stray sqlite3 shell) while alice keeps calling and a monitor polls
 * /healthz: her call latency and /healthz latency before, during and after
 * the lock, against a gateway running as its own process.
 *
 *   node dist/bench/abuse-audit-lock.js                      # this checkout
 *   BEHALF_ROOT=/work/wt-base/dist node dist/bench/abuse-audit-lock.js   # another built tree (before)
 *
 * LOCK_MS (default 10000) is how long the lock is held; /healthz and
 * /readyz are polled every HEALTH_EVERY_MS (100) without waiting for the
 * previous answer, so a frozen event loop shows as long answers rather than
 * as missing samples. A request belongs to "during lock" when it overlaps
 * the lock at all (from the locker saying it holds it to its release), so
 * one that was already waiting when the lock was announced counts too.
 */
import { rmSync } from 'node:fs';
import { tempDir } from '../test/helpers/tmp.js';
import {
  aliceHeaders,
  gatewaySetup,
  holdWriteLock,
  percentile,
  startGatewayProcess,
  THIS_ROOT,
  timedCall,
  timedGet,
  verifyAudit,
} from '../test/helpers/gateway-process.js';
import { openSession } from '../test/helpers/raw-http.js';

const ROOT = process.env.BEHALF_ROOT ?? THIS_ROOT;
const LOCK_MS = Number(process.env.LOCK_MS ?? 10_000);
const SIDE_MS = Number(process.env.SIDE_MS ?? 3_000);
const HEALTH_EVERY_MS = Number(process.env.HEALTH_EVERY_MS ?? 100);

type Phase = 'before lock' | 'during lock' | 'after release';
/** performance.now() at start and end; a sample belongs to the lock when the two intervals overlap at all. */
interface Sample {
  start: number;
  end: number;
  ok: boolean;
  status?: number;
}

const dir = tempDir('behalf-bench-lock-');
const setup = await gatewaySetup(ROOT, dir);
const gw = await startGatewayProcess(setup);
const calls: Sample[] = [];
const health: Sample[] = [];
const ready: Sample[] = [];
let running = true;
let lockedAt = Infinity;
let releasedAt = Infinity;
try {
  const headers = await aliceHeaders(setup, gw.url);
  const session = await openSession(gw.url, headers);
  for (let i = 0; i < 20; i++) await timedCall(gw.url, headers, session);

  const caller = (async () => {
    while (running) {
      const start = performance.now();
      const { r } = await timedCall(gw.url, headers, session);
      calls.push({ start, end: performance.now(), ok: !!(r.json as { result?: unknown } | undefined)?.result });
    }
  })();
  const polls: Array<Promise<void>> = [];
  const sample = (path: string, into: Sample[]) => {
    const start = performance.now();
    return timedGet(`${gw.origin}${path}`).then(
      ({ r }) => void into.push({ start, end: performance.now(), ok: r.status === 200, status: r.status }),
    );
  };
  const poller = setInterval(() => polls.push(sample('/healthz', health), sample('/readyz', ready)), HEALTH_EVERY_MS);

  await new Promise((r) => setTimeout(r, SIDE_MS));
  const lock = await holdWriteLock(setup.auditPath, LOCK_MS);
  lockedAt = performance.now();
  await lock.released;
  releasedAt = performance.now();
  await new Promise((r) => setTimeout(r, SIDE_MS));
  running = false;
  clearInterval(poller);
  await caller;
  await Promise.all(polls);
} finally {
  await gw.stop();
  await setup.idp.close();
}

const phaseOf = (x: Sample): Phase =>
  x.end < lockedAt ? 'before lock' : x.start > releasedAt ? 'after release' : 'during lock';
const row = (xs: Sample[]) =>
  xs.length
    ? {
        n: xs.length,
        ok: xs.filter((x) => x.ok).length,
        'median ms': percentile(
          xs.map((x) => x.end - x.start),
          50,
        ).toFixed(1),
        'max ms': Math.max(...xs.map((x) => x.end - x.start)).toFixed(1),
      }
    : { n: 0 };
console.log(`audit lock abuse: ${ROOT}, lock ${LOCK_MS} ms, Node ${process.version}, ${new Date().toISOString()}`);
const table: Record<string, unknown> = {};
for (const p of ['before lock', 'during lock', 'after release'] as const) {
  table[`alice calls, ${p}`] = row(calls.filter((c) => phaseOf(c) === p));
  table[`/healthz, ${p}`] = row(health.filter((h) => phaseOf(h) === p));
  const statuses = ready.filter((r) => phaseOf(r) === p).map((r) => r.status);
  table[`/readyz, ${p}`] = { n: statuses.length, statuses: [...new Set(statuses)].join(' ') };
}
console.table(table);
const v = verifyAudit(ROOT, setup.auditPath);
console.log(`behalf audit verify: exit ${v.status}: ${v.out.trim()}`);
const storeLines = gw.log.filter((l) => /audit/i.test(l));
console.log(`gateway log lines about the audit store: ${storeLines.length}`);
for (const l of storeLines.slice(0, 6)) console.log(`  ${l}`);
rmSync(dir, { recursive: true, force: true });
