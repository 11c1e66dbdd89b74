/**
 * `npm run bench -- --operations`: what observability costs per call. Four
 * gateways in front of one demo CRM (HTTP), each its own process — no
 * metrics and no tracing; metrics on; tracing sampled at 100 %; tracing
 * sampled at 1 % — all exporting to one OTLP receiver, measured in one run
 * and interleaved (a round of calls on each in turn, several rounds), so a
 * machine whose load changes during the run shifts all four alike; the order
 * rotates each round and each batch's spans are exported (1 s batches) before
 * the next variant is measured. Reported:
 * median and p99 latency, the gateway's own CPU per call (/proc), and each
 * against "off".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { generateApiKey } from '../src/identity/api-keys.js';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import { lineOf } from '../test/helpers/spawned-gateway.js';
import { tempDir } from '../test/helpers/tmp.js';
import { cpuMs, openSession, pct, post } from './roundtrip-client.js';
import { benchGatewayConfig, benchToken, spawnDemoCrm, startBenchIdp } from './bench-setup.js';

const ROUNDS = Number(process.env.BENCH_OPS_ROUNDS ?? 6);
const CALLS_PER_ROUND = Number(process.env.BENCH_OPS_CALLS ?? 500);
const WARMUP = 300;
const root = fileURLToPath(new URL('..', import.meta.url));

interface Variant {
  label: string;
  operations: Record<string, unknown>;
  gw?: ChildProcess;
  headers?: Record<string, string>;
  url?: string;
  latencies: number[];
  cpuMs: number;
}

async function startVariant(v: Variant, base: Record<string, unknown>, dir: string): Promise<void> {
  const file = join(dir, `${v.label.replace(/\W+/g, '-')}.yaml`);
  const auditPath = join(dir, `${v.label.replace(/\W+/g, '-')}.db`);
  writeFileSync(
    file,
    stringify({ ...base, audit: { sqlitePath: auditPath, writeBudgetMs: 2000 }, operations: v.operations }),
  );
  const prof = process.env.BENCH_CPU_PROF;
  const profile = prof ? ['--cpu-prof', '--cpu-prof-dir', join(prof, v.label.replace(/\W+/g, '-'))] : [];
  v.gw = spawn(process.execPath, [...profile, join(root, 'src/cli/main.js'), 'gateway', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  v.url = (await lineOf(v.gw, /behalf gateway: crm at /)).split(' at ')[1]!.trim();
}

function call(v: Variant, i: number) {
  return post(v.url!, v.headers!, {
    jsonrpc: '2.0',
    id: i + 1,
    method: 'tools/call',
    params: { name: 'get_customer', arguments: { customer_id: 'c-100' } },
  });
}

export async function benchOperations(): Promise<void> {
  const { crm, crmUrl } = await spawnDemoCrm();
  const idp = await startBenchIdp();
  const receiver = await startOtlpReceiver();
  const dir = tempDir('behalf-bench-ops-');
  const apiKey = generateApiKey();
  const base = benchGatewayConfig({
    issuer: idp.issuer,
    apiKey,
    crmUrl,
    userClaims: ['role'],
    rules: DEMO_POLICY.filter((r) => !r.when?.includes('customers')),
  });
  const tracing = (sampleRatio: number) => ({ tracing: { endpoint: receiver.url, sampleRatio } });
  const variants: Variant[] = [
    { label: 'off', operations: {}, latencies: [], cpuMs: 0 },
    { label: 'metrics on', operations: { metrics: { listen: '127.0.0.1:0' } }, latencies: [], cpuMs: 0 },
    { label: 'tracing 100 %', operations: tracing(1), latencies: [], cpuMs: 0 },
    { label: 'tracing 1 %', operations: tracing(0.01), latencies: [], cpuMs: 0 },
    // The same as the first: how far two identical gateways differ in one run (the noise floor).
    { label: 'off (control)', operations: {}, latencies: [], cpuMs: 0 },
  ];
  try {
    for (const v of variants) {
      await startVariant(v, base, dir);
      const accessToken = await benchToken(idp, v.url!, 'carol');
      v.headers = await openSession(v.url!, { 'x-api-key': apiKey, authorization: `Bearer ${accessToken}` });
      for (let i = 0; i < WARMUP; i++) {
        const r = await call(v, i);
        if (r.status !== 200 || !(r.json as { result?: unknown }).result)
          throw new Error(`${v.label}: call failed (${r.status} ${JSON.stringify(r.json)})`);
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts with another variant, and each variant's batch of spans is exported before the next is
      // measured (the receiver runs in this process), so no variant always follows the exporting one.
      for (const v of [...variants.slice(round % variants.length), ...variants.slice(0, round % variants.length)]) {
        await new Promise((r) => setTimeout(r, 1500));
        const cpu0 = cpuMs(v.gw!.pid!);
        for (let i = 0; i < CALLS_PER_ROUND; i++) {
          const t = performance.now();
          await call(v, i);
          v.latencies.push(performance.now() - t);
        }
        v.cpuMs += cpuMs(v.gw!.pid!) - cpu0;
      }
    }
    report(variants, receiver.spans.length);
  } finally {
    for (const v of variants) {
      v.gw?.kill('SIGINT');
      if (v.gw) await new Promise((r) => v.gw!.once('exit', r));
    }
    crm.kill('SIGTERM');
    await receiver.close();
    await idp.close();
  }
}

function report(variants: Variant[], spans: number): void {
  const off = variants[0]!;
  const offCpu = off.cpuMs / off.latencies.length;
  const offMedian = pct(off.latencies, 50);
  console.log(
    `tools/call get_customer through the gateway, sequential, ${ROUNDS} interleaved rounds × ${CALLS_PER_ROUND} calls per variant, Node ${process.version}`,
  );
  console.table(
    variants.map((v) => {
      const cpu = v.cpuMs / v.latencies.length;
      return {
        variant: v.label,
        calls: v.latencies.length,
        'median ms': pct(v.latencies, 50).toFixed(3),
        'p99 ms': pct(v.latencies, 99).toFixed(3),
        'median vs off': (pct(v.latencies, 50) / offMedian).toFixed(3),
        'gateway CPU ms/call': cpu.toFixed(4),
        'CPU vs off': (cpu / offCpu).toFixed(3),
        'CPU added µs/call': ((cpu - offCpu) * 1000).toFixed(1),
      };
    }),
  );
  console.log(`spans received by the OTLP receiver: ${spans}`);
  console.log(
    'CPU is read in 10 ms ticks from /proc over all rounds; on a shared machine compare the ratios within one run, not absolute numbers across runs.',
  );
}
