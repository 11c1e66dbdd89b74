/**
 * `npm run bench -- --load --sessions`: what open sessions and streams cost
 * behalf on the HTTP upstream. Sessions are added up to 10, 1,000 and 10,000
 * (all alice's: the per-user quota is raised for the bench, the worst case
 * for any per-user bookkeeping), then 2,000 GET streams are opened on them.
 * At each step: the gateway's RSS, its CPU while nothing is sent (idle
 * sessions should cost none), and a load window on 16 of the sessions for its
 * CPU per call, which should stay flat as the count grows.
 * BENCH_SESSIONS_UPSTREAM_GET=refuse puts nginx in front of the upstream,
 * answering GET with 405, so the gateway holds no standing GET per session.
 */
import type { ClientRequest } from 'node:http';
import { machine, writeReport } from './report.js';
import { BEHALF_HTTP, startRig } from './rig.js';
import { openSessions, openStream } from './mcp-client.js';
import { connectionsTo, cpuMs, rssBytes } from './processes.js';
import type { LoadSettings } from './settings.js';
import { measure, warmUp, type WindowResult } from './window.js';

const LEVELS = (process.env.BENCH_SESSIONS_LEVELS ?? '10,1000,10000').split(',').map(Number);
const STREAMS = Number(process.env.BENCH_SESSIONS_STREAMS ?? 2000);
const IDLE_SECONDS = Number(process.env.BENCH_SESSIONS_IDLE_SECONDS ?? 5);
const LOAD_CONNECTIONS = 16;
/** The quotas the bench runs with (SESSION_DEFAULTS: 10,000 sessions, 16 per user, 16 streams per user). */
export const BENCH_SESSION_QUOTAS = {
  maxSessions: 12_000,
  maxPerUser: 12_000,
  maxStreamsPerUser: 4_000,
  maxStreamsPerClient: 4_000,
};

/** Every stream is a connection from 127.0.0.1 (SERVER_DEFAULTS: 4,096 in all, 1,024 per address). */
export const BENCH_CONNECTION_CAPS = { maxConnections: 8_192, maxConnectionsPerIp: 8_192 };

interface Step {
  sessions: number;
  streams: number;
  openSeconds: number;
  rssMb: number;
  upstreamRssMb: number;
  idleCpuMsPerSecond: number;
  upstreamConnections: number;
  load?: WindowResult;
  failure?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (b: number) => b / (1024 * 1024);

export async function runSessions(s: LoadSettings): Promise<void> {
  const refuseGet = process.env.BENCH_SESSIONS_UPSTREAM_GET === 'refuse';
  const rig = await startRig({
    only: (n) => n === BEHALF_HTTP,
    sessions: BENCH_SESSION_QUOTAS,
    server: BENCH_CONNECTION_CAPS,
    upstreamRefusesGet: refuseGet,
  });
  const spec = rig.specs.find((t) => t.name === BEHALF_HTTP)!;
  const gwPid = spec.proxyPids()[0]!;
  const sessions: Record<string, string>[] = [];
  const streams: ClientRequest[] = [];
  const steps: Step[] = [];
  const step = async (streamCount: number, openSeconds: number, failure?: string) => {
    const cpu0 = cpuMs([gwPid]);
    await sleep(IDLE_SECONDS * 1000);
    const idle = (cpuMs([gwPid]) - cpu0) / IDLE_SECONDS;
    const st: Step = {
      sessions: sessions.length,
      streams: streamCount,
      openSeconds,
      rssMb: mb(rssBytes(gwPid)),
      upstreamRssMb: mb(rssBytes(rig.upstream.pid)),
      idleCpuMsPerSecond: idle,
      upstreamConnections: connectionsTo(spec.upstreamPort!, [gwPid]),
      failure,
    };
    // Even after a failure: whether the sessions already open still get answers is the point then.
    const target = { ...spec, sessions: sessions.slice(0, LOAD_CONNECTIONS) };
    await warmUp(target, LOAD_CONNECTIONS, s.warmup);
    st.load = await measure(target, LOAD_CONNECTIONS, s.seconds);
    steps.push(st);
    console.error(
      `sessions ${st.sessions}, streams ${st.streams}: RSS ${st.rssMb.toFixed(0)} MB${failure ? ` (${failure})` : ''}`,
    );
  };
  try {
    let failed: string | undefined;
    for (const level of LEVELS) {
      const t = performance.now();
      try {
        await openSessions(spec.url, spec.auth, level - sessions.length, 32, sessions);
      } catch (err) {
        failed = `opening sessions stopped at ${sessions.length}: ${(err as Error).message.slice(0, 200)}`;
      }
      await step(0, (performance.now() - t) / 1000, failed);
      if (failed) break;
    }
    if (!failed && STREAMS > 0) {
      const t = performance.now();
      try {
        const on = sessions.slice(LOAD_CONNECTIONS, LOAD_CONNECTIONS + STREAMS);
        for (let i = 0; i < on.length; i += 100) {
          const opened = await Promise.all(on.slice(i, i + 100).map((h) => openStream(spec.url, h)));
          streams.push(...opened.map((o) => o.req));
          const refused = opened.filter((o) => o.status !== 200).length;
          if (refused)
            throw new Error(`${refused} GET streams refused (HTTP ${opened.find((o) => o.status !== 200)!.status})`);
        }
      } catch (err) {
        failed = `opening streams stopped at ${streams.length}: ${(err as Error).message.slice(0, 200)}`;
      }
      await step(streams.length, (performance.now() - t) / 1000, failed);
    }
  } finally {
    for (const r of streams) r.destroy();
    await rig.close();
  }
  const base = steps[0]?.load?.proxyCpuMsPerCall;
  const rows = [
    '| sessions | GET streams | open s | gateway RSS MB | upstream RSS MB | upstream conns | idle gateway CPU ms/s | req/s | p50 ms | gateway CPU ms/call | × first step | errors non-2xx / rpc / socket |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...steps.map((st) => {
      const l = st.load;
      const cpu = l?.proxyCpuMsPerCall;
      return `| ${st.sessions} | ${st.streams} | ${st.openSeconds.toFixed(1)} | ${st.rssMb.toFixed(0)} | ${st.upstreamRssMb.toFixed(0)} | ${st.upstreamConnections} | ${st.idleCpuMsPerSecond.toFixed(1)} | ${
        l ? l.reqPerSec.toFixed(0) : '-'
      } | ${l ? l.p50.toFixed(2) : '-'} | ${cpu?.toFixed(3) ?? '-'} | ${cpu && base ? `${(cpu / base).toFixed(2)}×` : '-'} | ${
        l ? `${l.non2xx} / ${l.rpcErrors} / ${l.socketErrors}` : '-'
      } |`;
    }),
  ];
  const failures = steps.filter((st) => st.failure).map((st) => `\nFailed: ${st.failure}`);
  const text = [
    `## Sessions and streams: ${BEHALF_HTTP}${refuseGet ? ' (the upstream refuses GET: nginx in front answers 405)' : ''}`,
    '',
    machine(),
    '',
    `All sessions are alice's, opened 32 at a time; quotas raised for the bench: sessions ${JSON.stringify(BENCH_SESSION_QUOTAS)}, server ${JSON.stringify(BENCH_CONNECTION_CAPS)}. ` +
      `Idle CPU over ${IDLE_SECONDS} s with nothing sent; then ${LOAD_CONNECTIONS} connections on ${LOAD_CONNECTIONS} of the sessions, ` +
      `${s.warmup} s warm-up, ${s.seconds} s measured. Streams are GETs held open on other sessions.`,
    '',
    ...rows,
    ...failures,
  ].join('\n');
  console.log(`\n${text}`);
  writeReport('bench-load-sessions.md', `${text}\n`);
}
