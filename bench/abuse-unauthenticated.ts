/**
 * What unauthenticated clients cost an authenticated one, measured on a
 * gateway running as its own process (README, Limits and abuse):
 *
 * 1. CPU: alice's sequential get_customer calls, alone and while 16 senders
 *    without credentials POST ~0.8 MB key-dense JSON bodies in a loop (from
 *    their own process), paced at 20/s each as the test does, then unpaced:
 *    her median under load against her median alone (measured around both).
 * 2. Memory: 1,000 connections without credentials, each announcing a 1 MiB
 *    body and sending 700 kB of it, held open: the gateway's RSS growth (from
 *    /proc), and whether alice is served meanwhile.
 *
 *   node dist/bench/abuse-unauthenticated.js
 *   BENCH_BEFORE=../old-checkout/dist node dist/bench/abuse-unauthenticated.js   # an older built tree first, same run
 *
 * BENCH_LOAD_SECONDS (default 10), BENCH_SENDERS (16), BENCH_HOLD (1000).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  aliceCaller,
  median,
  OWN_ROOT,
  rssPeak,
  startLoad,
  startSpawnedGateway,
  type SpawnedGateway,
} from '../test/helpers/spawned-gateway.js';

const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 10);
const SENDERS = Number(process.env.BENCH_SENDERS ?? 16);
const HOLD = Number(process.env.BENCH_HOLD ?? 1000);
const BODY_BYTES = 800_000;
/** What test/abuse-unauthenticated.test.ts offers: 20 requests a second per sender. */
const PACED_RATE = 20;

/** Sequential calls until `until` (or `max`); each call's latency in ms, and how many failed. */
async function callsUntil(
  alice: { call(): Promise<number> },
  until: number,
  max = Infinity,
): Promise<{ ms: number[]; failed: number }> {
  const ms: number[] = [];
  let failed = 0;
  while (Date.now() < until && ms.length + failed < max) {
    try {
      ms.push(await alice.call());
    } catch {
      failed++; // counted: a failed call is a result here, not an error of the bench
    }
  }
  return { ms, failed };
}

/** utime + stime of a process, in ms (/proc; USER_HZ 100). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Flood {
  requests: number;
  statuses: Record<string, number>;
  closedUnanswered: number;
}

/** One flood while alice calls: her latencies under it, what the senders got, and the gateway's CPU per request. */
async function underFlood(
  gw: SpawnedGateway,
  alice: { call(): Promise<number> },
  ratePerSender: number | undefined,
): Promise<{ ms: number[]; failed: number; flood: Flood }> {
  const load = startLoad({
    mode: 'flood',
    url: gw.url,
    senders: SENDERS,
    seconds: LOAD_SECONDS,
    bodyBytes: BODY_BYTES,
    ratePerSender,
  });
  await load.ready;
  await sleep(500);
  const { ms, failed } = await callsUntil(alice, Date.now() + (LOAD_SECONDS - 1) * 1000);
  return { ms, failed, flood: (await load.done) as Flood };
}

/** The gateway's CPU per unauthenticated request: an unpaced flood with nobody else calling, 3 s. */
async function cpuPerRequest(gw: SpawnedGateway): Promise<number> {
  const load = startLoad({ mode: 'flood', url: gw.url, senders: SENDERS, seconds: 3, bodyBytes: BODY_BYTES });
  await load.ready;
  const cpu0 = cpuMsOf(gw.pid);
  const flood = (await load.done) as Flood;
  return (cpuMsOf(gw.pid) - cpu0) / Math.max(1, flood.requests);
}

function floodRow(
  label: string,
  alone: number[],
  r: Awaited<ReturnType<typeof underFlood>>,
  cpuMs: number,
): Record<string, string> {
  const p50 = r.ms.length ? median(r.ms) : NaN;
  return {
    load: label,
    'alice p50 alone, ms': median(alone).toFixed(2),
    'alice p50 under load, ms': r.ms.length ? p50.toFixed(2) : 'none',
    ratio: r.ms.length ? (p50 / median(alone)).toFixed(2) : '-',
    [`alice calls in ${LOAD_SECONDS - 1} s (failed)`]: `${r.ms.length} (${r.failed})`,
    'unauth requests/s': (r.flood.requests / LOAD_SECONDS).toFixed(0),
    'unauth answers':
      JSON.stringify(r.flood.statuses) + (r.flood.closedUnanswered ? ` +${r.flood.closedUnanswered} reset` : ''),
    'gateway CPU ms per unauth request (flood alone)': cpuMs.toFixed(2),
  };
}

async function cpu(root: string): Promise<Array<Record<string, string>>> {
  const gw = await startSpawnedGateway({ root });
  try {
    const alice = await aliceCaller(gw);
    await callsUntil(alice, Infinity, 100);
    const alone = (await callsUntil(alice, Infinity, 200)).ms;
    const paced = await underFlood(gw, alice, PACED_RATE);
    alone.push(...(await callsUntil(alice, Infinity, 200)).ms);
    const unpaced = await underFlood(gw, alice, undefined);
    alone.push(...(await callsUntil(alice, Infinity, 200)).ms);
    alice.close();
    const cpuMs = await cpuPerRequest(gw);
    return [
      floodRow(`paced, ${PACED_RATE}/s per sender (the test's)`, alone, paced, cpuMs),
      floodRow('unpaced (each sender as fast as answered)', alone, unpaced, cpuMs),
    ];
  } finally {
    await gw.close();
  }
}

async function memory(root: string): Promise<Record<string, string | number>> {
  const gw: SpawnedGateway = await startSpawnedGateway({ root });
  try {
    const alice = await aliceCaller(gw);
    await callsUntil(alice, Infinity, 100);
    await sleep(500);
    const before = gw.rss();
    const sampler = rssPeak(gw.pid);
    const load = startLoad({
      mode: 'hold',
      url: gw.url,
      connections: HOLD,
      declaredBytes: 1_048_576,
      sentBytes: 700_000,
      localAddress: '127.0.0.2',
    });
    const held = (await load.ready) as { open: number };
    const served = await callsUntil(alice, Date.now() + 3000, 20);
    await sleep(2000);
    const peak = sampler.stop();
    load.stop();
    const tally = (await load.done) as { statuses: Record<string, number>; closedUnanswered: number };
    alice.close();
    return {
      'RSS before, MB': (before / 2 ** 20).toFixed(0),
      'RSS peak while held, MB': (peak / 2 ** 20).toFixed(0),
      'growth, MB': ((peak - before) / 2 ** 20).toFixed(0),
      'still open when all were sent': held.open,
      'alice served (of tried)': `${served.ms.length} (${served.ms.length + served.failed})`,
      'alice p50, ms': served.ms.length ? median(served.ms).toFixed(2) : 'none',
      'hostile answers':
        JSON.stringify(tally.statuses) + (tally.closedUnanswered ? ` +${tally.closedUnanswered} closed` : ''),
    };
  } finally {
    await gw.close();
  }
}

const roots: Array<[string, string]> = [
  ...(process.env.BENCH_BEFORE ? [['before', process.env.BENCH_BEFORE] as [string, string]] : []),
  ['after', OWN_ROOT],
];
console.log(
  `unauthenticated abuse, ${new Date().toISOString()}, Node ${process.version}; CPU: ${SENDERS} senders x ${BODY_BYTES} B for ${LOAD_SECONDS} s; memory: ${HOLD} held bodies`,
);
const cpuRows: Array<Record<string, string>> = [];
const memRows: Record<string, Record<string, string | number>> = {};
for (const [label, root] of roots)
  for (const row of await cpu(root)) cpuRows.push({ tree: `${label} (${root})`, ...row });
console.log(`\nCPU: ${SENDERS} unauthenticated senders of ${BODY_BYTES} B key-dense bodies while alice calls`);
console.table(cpuRows);
for (const [label, root] of roots) memRows[`${label} (${root})`] = await memory(root);
console.log(`\nmemory: ${HOLD} unauthenticated connections holding unfinished bodies`);
console.table(memRows);
