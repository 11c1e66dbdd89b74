/**
 * `npm run bench -- --load --fleet`: one gateway instance versus three behind
 * nginx, in one run, on the machine's Redis and PostgreSQL (a key prefix and
 * a database of the run's own, removed after). Both fleets use the example's
 * nginx template (examples/fleet), the same config as a fleet runs it (shared
 * state in Redis, the audit trail in PostgreSQL), and the same load as the
 * peers' table (bench/load/window.ts). The embedded single gateway (memory and
 * SQLite, no nginx) is measured beside them, for what the fleet's machinery
 * costs. CPU per call is read from /proc for every process on the path:
 * gateways, nginx, Redis, the PostgreSQL backends of the run's database, the
 * upstream, and the load generator.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { createTestDb, type TestDb } from '../../test/helpers/pg-db.js';
import { nginxBinary, startNginx, type Nginx } from '../../test/helpers/nginx.js';
import { dropPrefix, REDIS_URL } from '../../test/helpers/redis-test.js';
import { ROUTE, startGateway, startIdp, type Gateway, type Idp } from './behalf.js';
import { startEverythingHttp, type Upstream } from './peers.js';
import { freePort } from '../../test/helpers/free-port.js';
import { childrenOf } from './processes.js';
import { machine, median, writeReport } from './report.js';
import { withSessions, type OpenedSessions, type TargetSpec } from './rig.js';
import type { LoadSettings } from './settings.js';
import { measure, warmUp, type WindowResult } from './window.js';

const EMBEDDED = 'behalf ×1, embedded (memory + SQLite), no nginx';
const ONE = 'behalf ×1 behind nginx (Redis + PostgreSQL)';
const THREE = 'behalf ×3 behind nginx (Redis + PostgreSQL)';
const GROUPS = ['behalf', 'nginx', 'Redis', 'PostgreSQL', 'upstream', 'load gen'] as const;

/** The machine's Redis server processes (shared with whatever else uses it: its CPU is an upper bound). */
function redisPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return readFileSync(`/proc/${n}/comm`, 'utf8').trim() === 'redis-server';
      } catch {
        // The process ended between listing and reading: not Redis any more.
        return false;
      }
    })
    .map(Number);
}

interface Fleet {
  spec: TargetSpec;
  stop(): Promise<void>;
}

async function startFleet(
  name: string,
  size: 1 | 3,
  idp: Idp,
  upstream: Upstream,
  prefix: string,
  db: TestDb,
): Promise<Fleet> {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const gateways: Gateway[] = [];
  let nginx: Nginx | undefined;
  const backends = new pg.Client({ connectionString: db.url });
  const stop = async () => {
    await nginx?.close();
    for (const g of gateways) await g.stop();
    await backends.end().catch(() => undefined); // never connected: nothing to end
  };
  try {
    for (let n = 1; n <= size; n++) {
      const fleet = { redisUrl: REDIS_URL, prefix, pgUrl: db.url, instanceId: `bench-${size}-${n}`, publicUrl };
      gateways.push(await startGateway(idp, { http: upstream.url }, { fleet }));
    }
    const addrs = gateways.map((g) => new URL(g.url).host);
    nginx = await startNginx([addrs[0]!, addrs[1 % size]!, addrs[2 % size]!], { port });
    await backends.connect();
    const url = `${nginx.origin}/mcp/${ROUTE}`;
    const master = nginx.pid;
    /** The server processes of the run's own database (the gateways' audit writers and readers). */
    let pgPids: number[] = [];
    const refreshPg = async () => {
      const rows = await backends.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [db.name],
      );
      pgPids = rows.rows.map((r) => r.pid);
    };
    await refreshPg();
    return {
      spec: {
        name,
        url,
        auth: await idp.headersFor('alice', url),
        proxyPids: () => [...gateways.map((g) => g.pid), master, ...childrenOf(master)],
        upstreamPids: () => [upstream.pid],
        upstreamRequests: () => upstream.requests(),
        upstreamPort: upstream.port,
        cpuGroups: () => {
          void refreshPg();
          return {
            behalf: gateways.map((g) => g.pid),
            nginx: [master, ...childrenOf(master)],
            Redis: redisPids(),
            PostgreSQL: pgPids,
          };
        },
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface Row {
  target: string;
  connections: number;
  rounds: WindowResult[];
}

function groupMs(w: WindowResult, g: (typeof GROUPS)[number]): number {
  if (g === 'upstream') return w.upstreamCpuMsPerCall;
  if (g === 'load gen') return w.generatorCpuMsPerCall;
  if (g === 'behalf' && !w.groupCpuMsPerCall) return w.proxyCpuMsPerCall ?? NaN;
  return w.groupCpuMsPerCall?.[g] ?? NaN;
}

function table(rows: Row[]): string {
  const out = [
    `| target | conns | req/s | × one instance | p50 ms | p99 ms | errors | ${GROUPS.map((g) => `${g} CPU ms/call`).join(' | ')} | all CPU ms/call |`,
    `|---|---:|---:|---:|---:|---:|---:|${GROUPS.map(() => '---:|').join('')}---:|`,
  ];
  for (const r of rows) {
    const med = (pick: (w: WindowResult) => number) => median(r.rounds.map(pick));
    const one = rows.find((x) => x.target === ONE && x.connections === r.connections);
    const rps = med((w) => w.reqPerSec);
    const cpu = GROUPS.map((g) => med((w) => groupMs(w, g)));
    const all = med((w) => GROUPS.reduce((a, g) => a + (Number.isNaN(groupMs(w, g)) ? 0 : groupMs(w, g)), 0));
    const errors = r.rounds.reduce((a, w) => a + w.non2xx + w.rpcErrors + w.socketErrors, 0);
    const statuses = new Map<string, number>();
    for (const w of r.rounds)
      for (const [code, n] of Object.entries(w.failedStatuses ?? {})) statuses.set(code, (statuses.get(code) ?? 0) + n);
    const byStatus = [...statuses].map(([code, n]) => `${n}× ${code}`).join(', ');
    out.push(
      `| ${[
        r.target,
        r.connections,
        rps.toFixed(0),
        one ? `${(rps / median(one.rounds.map((w) => w.reqPerSec))).toFixed(2)}` : '-',
        med((w) => w.p50).toFixed(2),
        med((w) => w.p99).toFixed(2),
        byStatus ? `${errors} (${byStatus})` : errors,
        ...cpu.map((c) => (Number.isNaN(c) ? '-' : c.toFixed(3))),
        all.toFixed(3),
      ].join(' | ')} |`,
    );
  }
  return out.join('\n');
}

const NOTE = [
  'What limits scaling here: every process shares the same 2 cores — the gateways, nginx, the upstream,',
  'Redis, PostgreSQL and the load generator. One gateway is one Node.js event loop, so it can use about one',
  'core; more instances only help when cores are idle, and here they are not. Worse, three instances cost',
  'more CPU per call than one (three idle fleet gateways use under 10 ms of CPU per second, so this is not',
  'fixed overhead): each instance sees a third of the calls, so less work is shared per event-loop turn,',
  "per Redis write and per PostgreSQL transaction (the audit writer's batches shrink, and three writers take",
  "turns on the one chain's head lock), and three busy processes on two cores add switching. Calls then",
  'queue, latency grows, and past the audit write budget (200 ms) a call is refused, fail closed (503).',
  'On a machine with a core per instance and spare cores for Redis and PostgreSQL, req/s grows with',
  'instances until the single audit chain (one serialised append, bench audit-fleet-append) or Redis',
  "bounds it. The Redis column is the machine's Redis server as a whole (other clients' work included);",
  "PostgreSQL counts only the backends of the run's own database, not the WAL writer or checkpointer.",
].join('\n');

export async function runFleetLoad(s: LoadSettings): Promise<void> {
  if (!nginxBinary()) throw new Error('--fleet needs nginx (Debian: apt-get install nginx)');
  const id = randomBytes(4).toString('hex');
  const prefixes = [`behalf-bench:${id}:one:`, `behalf-bench:${id}:three:`];
  const dbs: TestDb[] = [];
  const stops: (() => Promise<void>)[] = [];
  const rows: Row[] = [];
  let idp: Idp | undefined;
  try {
    const upstream = await startEverythingHttp();
    stops.push(() => upstream.stop());
    idp = await startIdp();
    dbs.push(await createTestDb(), await createTestDb());
    const embedded = await startGateway(idp, { http: upstream.url });
    stops.push(() => embedded.stop());
    const specs: TargetSpec[] = [
      {
        name: EMBEDDED,
        url: embedded.url,
        auth: await idp.headersFor('alice', embedded.url),
        proxyPids: () => [embedded.pid],
        upstreamPids: () => [upstream.pid],
        upstreamRequests: () => upstream.requests(),
        upstreamPort: upstream.port,
      },
    ];
    for (const [name, size, n] of [[ONE, 1, 0] as const, [THREE, 3, 1] as const]) {
      const fleet = await startFleet(name, size, idp, upstream, prefixes[n]!, dbs[n]!);
      stops.push(fleet.stop);
      specs.push(fleet.spec);
    }
    for (const connections of s.connections) {
      const targets: OpenedSessions[] = [];
      for (const spec of specs) targets.push(await withSessions(spec, s.shared ? 1 : connections));
      try {
        for (let round = 0; round < s.rounds; round++) {
          for (const { target } of targets.map((_, i) => targets[(i + round) % targets.length]!)) {
            await warmUp(target, connections, s.warmup);
            const w = await measure(target, connections, s.seconds);
            let row = rows.find((r) => r.target === target.name && r.connections === connections);
            if (!row) rows.push((row = { target: target.name, connections, rounds: [] }));
            row.rounds.push(w);
            console.error(
              `round ${round + 1}/${s.rounds} ${connections} conns ${target.name}: ${w.reqPerSec.toFixed(0)} req/s, errors ${w.non2xx}/${w.rpcErrors}/${w.socketErrors}`,
            );
          }
        }
      } finally {
        for (const t of targets) await t.close();
      }
    }
  } finally {
    for (const stop of stops.reverse()) await stop();
    await idp?.close();
    for (const db of dbs) await db.drop();
    for (const p of prefixes) await dropPrefix(p);
  }
  const order = [EMBEDDED, ONE, THREE];
  rows.sort((a, b) => a.connections - b.connections || order.indexOf(a.target) - order.indexOf(b.target));
  const text = [
    '## Load: one gateway instance versus three behind nginx',
    '',
    machine(),
    '',
    `autocannon through nginx (examples/fleet template), keep-alive, ${s.shared ? 'one session shared by all connections' : 'one session per connection'}; ` +
      `${s.warmup} s warm-up then ${s.seconds} s measured per window, ${s.rounds} interleaved rounds; tools/call echo on server-everything. ` +
      'Medians across rounds; errors summed. CPU from /proc utime+stime over each window, divided by the calls completed.',
    '',
    table(rows),
    '',
    NOTE,
  ].join('\n');
  console.log(`\n${text}`);
  writeReport('bench-load-fleet.md', `${text}\n`);
  writeReport('bench-load-fleet.json', JSON.stringify({ machine: machine(), settings: s, rows }, null, 2));
}
