/**
 * What unauthenticated clients cost an authenticated one, measured on a
 * gateway running as its own process (docs/limits-front.md):
 *
 * 1. CPU: alice's sequential get_customer calls, first alone, then while 16
 *    senders without credentials POST ~0.8 MB key-dense JSON bodies in a loop
 *    (from their own process): her median under load against her median alone.
 * 2. Memory: 1,000 connections without credentials, each announcing a 1 MiB
 *    body and sending 700 kB of it, held open: the gateway's RSS growth (from
 *    /proc), and whether alice is served meanwhile.
 *
 *   node dist/bench/abuse-unauthenticated.js
 *   BENCH_BEFORE=/work/wt-base/dist node dist/bench/abuse-unauthenticated.js   # the older tree first, same run
 *
 * BENCH_LOAD_SECONDS (default 10), BENCH_SENDERS (16), BENCH_HOLD (1000).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  aliceCaller,
  median,
  OWN_ROOT,
  startLoad,
  startSpawnedGateway,
  type SpawnedGateway,
} from '../test/helpers/spawned-gateway.js';

const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 10);
const SENDERS = Number(process.env.BENCH_SENDERS ?? 16);
const HOLD = Number(process.env.BENCH_HOLD ?? 1000);
const BODY_BYTES = 800_000;

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

async function cpu(root: string): Promise<Record<string, string | number>> {
  const gw = await startSpawnedGateway({ root });
  try {
    const alice = await aliceCaller(gw);
    await callsUntil(alice, Infinity, 100);
    const alone = await callsUntil(alice, Infinity, 200);
    const load = startLoad({
      mode: 'flood',
      url: gw.url,
      senders: SENDERS,
      seconds: LOAD_SECONDS,
      bodyBytes: BODY_BYTES,
    });
    const body = (await load.ready) as { bodyBytes: number; keys: number };
    await sleep(500);
    const loaded = await callsUntil(alice, Date.now() + (LOAD_SECONDS - 1) * 1000);
    const tally = (await load.done) as { requests: number; statuses: Record<string, number>; closedUnanswered: number };
    alice.close();
    return {
      'body (bytes, keys)': `${body.bodyBytes}, ${body.keys}`,
      'alice p50 alone, ms': median(alone.ms).toFixed(2),
      'alice p50 under load, ms': loaded.ms.length ? median(loaded.ms).toFixed(2) : 'none',
      ratio: loaded.ms.length ? (median(loaded.ms) / median(alone.ms)).toFixed(2) : '-',
      [`alice calls in ${LOAD_SECONDS - 1} s (failed)`]: `${loaded.ms.length} (${loaded.failed})`,
      'unauth requests/s': (tally.requests / LOAD_SECONDS).toFixed(0),
      'unauth answers':
        JSON.stringify(tally.statuses) + (tally.closedUnanswered ? ` +${tally.closedUnanswered} closed` : ''),
    };
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
    const load = startLoad({
      mode: 'hold',
      url: gw.url,
      connections: HOLD,
      declaredBytes: 1_048_576,
      sentBytes: 700_000,
      localAddress: '127.0.0.2',
    });
    const held = (await load.ready) as { open: number };
    let peak = gw.rss();
    const served = await callsUntil(alice, Date.now() + 3000, 20);
    for (let i = 0; i < 10; i++) {
      await sleep(200);
      peak = Math.max(peak, gw.rss());
    }
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
const cpuRows: Record<string, Record<string, string | number>> = {};
const memRows: Record<string, Record<string, string | number>> = {};
for (const [label, root] of roots) cpuRows[`${label} (${root})`] = await cpu(root);
console.log('\nCPU: 16 unauthenticated key-dense senders while alice calls');
console.table(cpuRows);
for (const [label, root] of roots) memRows[`${label} (${root})`] = await memory(root);
console.log(`\nmemory: ${HOLD} unauthenticated connections holding unfinished bodies`);
console.table(memRows);
