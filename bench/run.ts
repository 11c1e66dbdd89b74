/**
 * `npm run bench`: tools/call round trips straight to the demo CRM (the
 * baseline) and through the gateway, measured in the same run. The CRM and
 * the gateway each run in a child process, so the gateway's CPU per call is
 * read from its own process (/proc), not mixed with the client's.
 * `npm run bench -- --load` runs the load bench instead (bench/load/main.ts).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { generateApiKey } from '../src/identity/api-keys.js';
import { lineOf } from '../test/helpers/spawned-gateway.js';
import { tempDir } from '../test/helpers/tmp.js';
import { benchAuditAppend } from './audit-append.js';
import { benchPolicyEval } from './policy-eval.js';
import { benchPolicyReplay } from './policy-replay.js';
import { benchReviewQuickstart } from './review-quickstart.js';
import { benchSdkInProcess } from './sdk-in-process.js';
import { benchRevocationCheck } from './revocation-check.js';
import { cpuMs, openSession, pct, post } from './roundtrip-client.js';
import { benchGatewayConfig, benchToken, spawnDemoCrm, startBenchIdp } from './bench-setup.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARMUP = 200;
const root = fileURLToPath(new URL('..', import.meta.url));

interface Series {
  label: string;
  latencies: number[];
  cpuPerCallMs?: number;
}

async function measure(
  label: string,
  url: string,
  headers: Record<string, string>,
  pid: number | undefined,
): Promise<Series> {
  const h = await openSession(url, headers);
  const call = (i: number) =>
    post(url, h, {
      jsonrpc: '2.0',
      id: i + 1,
      method: 'tools/call',
      params: { name: 'get_customer', arguments: { customer_id: 'c-100' } },
    });
  for (let i = 0; i < WARMUP; i++) {
    const r = await call(i);
    if (r.status !== 200 || !(r.json as { result?: unknown }).result)
      throw new Error(`${label}: call failed (${r.status})`);
  }
  const cpu0 = pid ? cpuMs(pid) : 0;
  const latencies: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await call(i);
    latencies.push(performance.now() - t);
  }
  const cpuPerCallMs = pid ? (cpuMs(pid) - cpu0) / CALLS : undefined;
  return { label, latencies, cpuPerCallMs };
}

async function main(): Promise<void> {
  const { crm, crmUrl } = await spawnDemoCrm();
  const idp = await startBenchIdp();
  const dir = tempDir('behalf-bench-');
  const apiKey = generateApiKey();
  const config = {
    ...benchGatewayConfig({ issuer: idp.issuer, apiKey, crmUrl }),
    audit: { sqlitePath: join(dir, 'audit.db') },
  };
  writeFileSync(join(dir, 'gateway.yaml'), stringify(config));
  const gw = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []),
      join(root, 'src/cli/main.js'),
      'gateway',
      '--config',
      join(dir, 'gateway.yaml'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const gwUrl = (await lineOf(gw, /behalf gateway: crm at /)).split(' at ')[1]!.trim();
  try {
    const token = await benchToken(idp, gwUrl);
    const direct = await measure('direct to CRM (baseline)', crmUrl, {}, crm.pid);
    const viaGateway = await measure(
      'through behalf gateway',
      gwUrl,
      { 'x-api-key': apiKey, authorization: `Bearer ${token}` },
      gw.pid,
    );
    const rows = [direct, viaGateway].map((s) => ({
      series: s.label,
      calls: s.latencies.length,
      'median ms': pct(s.latencies, 50).toFixed(3),
      'p99 ms': pct(s.latencies, 99).toFixed(3),
      'server CPU ms/call': s.cpuPerCallMs?.toFixed(3) ?? '-',
    }));
    console.log(`tools/call get_customer, sequential, ${CALLS} calls after ${WARMUP} warm-up, Node ${process.version}`);
    console.table(rows);
    const addedMedian = pct(viaGateway.latencies, 50) - pct(direct.latencies, 50);
    console.log(
      `added median latency: ${addedMedian.toFixed(3)} ms (ratio ${(pct(viaGateway.latencies, 50) / pct(direct.latencies, 50)).toFixed(2)}x)`,
    );
    console.log(
      `gateway CPU per call: ${viaGateway.cpuPerCallMs!.toFixed(3)} ms (includes its own upstream HTTP client); CRM CPU per call: ${direct.cpuPerCallMs!.toFixed(3)} ms`,
    );
  } finally {
    gw.kill('SIGINT');
    await new Promise((r) => gw.once('exit', r));
    crm.kill('SIGTERM');
    await idp.close();
  }
}

/** The per-call decision costs, in-process: policy evaluation and one audit append (targets: ≤ 20 µs and ≤ 50 µs). */
async function decisionCosts(): Promise<void> {
  const policy = benchPolicyEval(Number(process.env.BENCH_POLICY_CALLS ?? 100_000));
  console.log('\npolicy evaluation per call (authorizeMessage over the quickstart policy; target ≤ 20 µs)');
  console.table(
    Object.entries(policy).map(([k, v]) => ({
      call: k,
      calls: v.calls,
      'median µs': v.medianUs.toFixed(2),
      'p99 µs': v.p99Us.toFixed(2),
    })),
  );
  const audit = await benchAuditAppend(Number(process.env.BENCH_AUDIT_CALLS ?? 20_000));
  console.log('audit append per record (SQLite WAL, hash chain included; target ≤ 50 µs)');
  console.table(
    Object.entries(audit).map(([k, v]) => ({
      mode: k,
      'median µs': v.medianUs.toFixed(2),
      'p99 µs': v.p99Us.toFixed(2),
      'mean µs': v.meanUs?.toFixed(2) ?? '-',
      'main-thread µs/record': v.mainThreadUs?.toFixed(2) ?? '-',
    })),
  );
}

/** A full `behalf review` of a running quickstart (target < 10 s). */
async function reviewCost(): Promise<void> {
  const r = await benchReviewQuickstart(Number(process.env.BENCH_REVIEW_RUNS ?? 3));
  console.log(`\nfull review of the quickstart (12 checks, pack written; target < 10 s), ${r.runs} runs`);
  console.table([
    {
      'median s': (r.medianMs / 1000).toFixed(2),
      'min s': (r.minMs / 1000).toFixed(2),
      'max s': (r.maxMs / 1000).toFixed(2),
      requests: r.requests,
      'of which BND-08 (waits for its 3 s token), s': (r.streamWaitMedianMs / 1000).toFixed(2),
    },
  ]);
  console.log(`statuses: ${JSON.stringify(r.statuses)}`);
}

/** behalf/sdk in-process: the same SDK v1 server with and without the boundary, per call (bench/sdk-in-process.ts). */
async function sdkCost(): Promise<void> {
  const r = await benchSdkInProcess(Number(process.env.BENCH_SDK_CALLS ?? 4000));
  const { plain, protected: withSdk, noAudit } = r.series;
  console.log(
    `\nbehalf/sdk in-process, tools/call get_customer on MCP SDK v1, ${r.calls} calls each, interleaved rounds`,
  );
  const row = (server: string, s: typeof plain) => ({
    server,
    'median µs': s.medianUs.toFixed(1),
    'CPU µs/call': s.cpuUsPerCall.toFixed(1),
  });
  console.table([
    row('without the SDK', plain),
    row('with behalf/sdk, audit on (SQLite)', withSdk),
    row('with behalf/sdk, audit discarded (breakdown)', noAudit),
  ]);
  const added = (s: typeof plain) =>
    `${(s.medianUs - plain.medianUs).toFixed(1)} µs median (${(s.medianUs / plain.medianUs).toFixed(2)}×), ` +
    `${(s.cpuUsPerCall - plain.cpuUsPerCall).toFixed(1)} µs CPU (${(s.cpuUsPerCall / plain.cpuUsPerCall).toFixed(2)}×)`;
  console.log(`added per call with the audit on: ${added(withSdk)}; of which checks alone: ${added(noAudit)}`);
}

/** `BENCH_ONLY=replay npm run bench`: `behalf policy replay` over 100,000 recorded decisions. */
async function replayCost(): Promise<void> {
  const n = Number(process.env.BENCH_REPLAY_RECORDS ?? 100_000);
  console.log(`\npolicy replay: ${n} recorded decisions against a widened quickstart policy`);
  const r = await benchPolicyReplay(n);
  console.table([
    {
      records: r.records,
      'store read, records/s': r.readPerSecond,
      're-decide, records/s': r.decidePerSecond,
      'CLI end to end, records/s': r.cliPerSecond,
      'CLI, s': r.cliSeconds,
      'new allows': r.newAllows,
      undecidable: r.undecidable,
    },
  ]);
}

const only = process.env.BENCH_ONLY;
if (process.argv.includes('--operations')) {
  // Metrics and tracing (100 % and 1 % sampled) against neither, interleaved in one run (bench/operations.ts).
  const { benchOperations } = await import('./operations.js');
  await benchOperations();
} else if (process.argv.includes('--load')) {
  // The load bench (bench/load/): peers under autocannon, sessions and memory, CPU profiles.
  const { runLoad } = await import('./load/main.js');
  await runLoad(process.argv.slice(2));
} else {
  if (!only || only === 'roundtrip') await main();
  if (!only || only === 'decisions') await decisionCosts();
  if (!only || only === 'review') await reviewCost();
  if (!only || only === 'sdk') await sdkCost();
  if (!only || only === 'revocation') await benchRevocationCheck(Number(process.env.BENCH_CALLS ?? 1000));
  if (!only || only === 'replay') await replayCost();
}
