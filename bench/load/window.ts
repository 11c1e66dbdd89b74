/**
 * One measured window of load on one target: autocannon on kept-alive
 * connections, each connection on a session of its own (or all on one when
 * the target's sessions say so), POSTing `tools/call echo`. What the proxy and
 * the upstream processes spent is read from /proc around the window and
 * divided by the calls completed in it.
 */
import autocannon from 'autocannon';
import { connectionsTo, cpuMs } from './processes.js';
import { settings } from './settings.js';

export interface Target {
  name: string;
  url: string;
  /** Headers of the sessions the connections use, in turn (a session per connection, or one for all). */
  sessions: Record<string, string>[];
  /** Processes of the hop itself (none for the direct target). */
  proxyPids(): number[];
  /** Processes of the MCP server (a stdio upstream's children included). */
  upstreamPids(): number[];
  /** Requests the HTTP upstream logged so far, when this target reaches it. */
  upstreamRequests?: () => { post: number; get: number };
  /** The HTTP upstream's port, to count the connections it holds during the window. */
  upstreamPort?: number;
  /** More processes whose CPU is counted per call, by group (a fleet: gateways, nginx, Redis, PostgreSQL). */
  cpuGroups?: () => Record<string, number[]>;
}

export interface WindowResult {
  calls: number;
  reqPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  /** Answers with an HTTP status outside 2xx. */
  non2xx: number;
  /** 2xx answers that carry no echo result (a JSON-RPC error, or anything else). */
  rpcErrors: number;
  /** Connection errors and timeouts. */
  socketErrors: number;
  proxyCpuMsPerCall?: number;
  upstreamCpuMsPerCall: number;
  /** This process: autocannon (and the reading of the upstream's log): what generating the load took. */
  generatorCpuMsPerCall: number;
  /** HTTP requests the upstream received per completed call (POST, GET). */
  upstreamPostsPerCall?: number;
  upstreamGetsPerCall?: number;
  /** Connections the proxy (or the direct client) held to the HTTP upstream half-way through the window. */
  upstreamConnections?: number;
  /** CPU ms per call of each of the target's cpuGroups. */
  groupCpuMsPerCall?: Record<string, number>;
  /** Answers outside 2xx, by HTTP status. */
  failedStatuses?: Record<string, number>;
}

const MESSAGE = 'hello from the load bench';
const BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: '[<id>]',
  method: 'tools/call',
  params: { name: 'echo', arguments: { message: MESSAGE } },
});
const EXPECTED = `Echo: ${MESSAGE}`;

interface Run {
  result: autocannon.Result;
  /** Every response's latency in ms: autocannon's own histogram keeps whole milliseconds only. */
  latencies: Float64Array;
}

function run(target: Target, connections: number, seconds: number): Promise<Run> {
  const { rate } = settings();
  let next = 0;
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  return new Promise<Run>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        method: 'POST',
        connections,
        duration: seconds,
        body: BODY,
        // Every call has an id of its own, as JSON-RPC asks within a session.
        idReplacement: true,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        setupClient(client) {
          const session = target.sessions[next++ % target.sessions.length]!;
          client.setHeaders({
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...session,
          });
        },
        verifyBody: (body) => typeof body === 'string' && body.includes(EXPECTED) && !body.includes('"error"'),
        timeout: 30,
        ...(rate ? { overallRate: rate } : {}),
      },
      (err, result) =>
        err
          ? reject(err instanceof Error ? err : new Error(String(err)))
          : resolve({ result, latencies: latencies.subarray(0, n) }),
    );
    instance.on('response', (_client, _status, _bytes, ms) => {
      if (n === latencies.length) {
        const grown = new Float64Array(n * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = ms;
    });
  });
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A warm-up the numbers do not include (JIT, pools, caches). */
export async function warmUp(target: Target, connections: number, seconds: number): Promise<void> {
  if (seconds > 0) await run(target, connections, seconds);
}

export async function measure(target: Target, connections: number, seconds: number): Promise<WindowResult> {
  const proxy = target.proxyPids();
  const upstream = target.upstreamPids();
  const req0 = target.upstreamRequests?.();
  let upstreamConnections: number | undefined;
  const sampler =
    target.upstreamPort === undefined
      ? undefined
      : setTimeout(
          // Who holds them: the proxy, or for the direct target autocannon in this very process.
          () => (upstreamConnections = connectionsTo(target.upstreamPort!, proxy.length ? proxy : [process.pid])),
          (seconds * 1000) / 2,
        );
  const groups = Object.entries(target.cpuGroups?.() ?? {});
  const groups0 = groups.map(([, pids]) => cpuMs(pids));
  const proxy0 = cpuMs(proxy);
  const upstream0 = cpuMs(upstream);
  const own0 = process.cpuUsage();
  const { result: r, latencies } = await run(target, connections, seconds);
  const groupMs = groups.map(([name, pids], i) => [name, cpuMs(pids) - groups0[i]!] as const);
  const proxyMs = cpuMs(proxy) - proxy0;
  const upstreamMs = cpuMs(upstream) - upstream0;
  const own = process.cpuUsage(own0);
  clearTimeout(sampler);
  const req1 = target.upstreamRequests?.();
  const calls = r['2xx'] + r.non2xx;
  const sorted = latencies.slice().sort();
  const perCall = (x: number) => (calls > 0 ? x / calls : NaN);
  return {
    calls,
    reqPerSec: calls / r.duration,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    non2xx: r.non2xx,
    // Every non-2xx answer fails the body check too: what is left are 2xx answers without the echo.
    rpcErrors: Math.max(0, r.mismatches - r.non2xx),
    socketErrors: r.errors,
    proxyCpuMsPerCall: proxy.length ? perCall(proxyMs) : undefined,
    upstreamCpuMsPerCall: perCall(upstreamMs),
    generatorCpuMsPerCall: perCall((own.user + own.system) / 1000),
    upstreamPostsPerCall: req0 && req1 ? perCall(req1.post - req0.post) : undefined,
    upstreamGetsPerCall: req0 && req1 ? perCall(req1.get - req0.get) : undefined,
    upstreamConnections,
    ...(groups.length && { groupCpuMsPerCall: Object.fromEntries(groupMs.map(([n, ms]) => [n, perCall(ms)])) }),
    failedStatuses: Object.fromEntries(
      Object.entries(r.statusCodeStats ?? {})
        .filter(([code]) => !code.startsWith('2'))
        .map(([code, v]) => [code, v.count ?? 0]),
    ),
  };
}
