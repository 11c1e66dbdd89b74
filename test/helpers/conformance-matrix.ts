/**
 * Every configuration of the official conformance suite the project holds
 * itself to, each run twice against one reference server: directly, and
 * through a real gateway in front of it (a fresh rig per configuration, so
 * sessions one configuration leaves behind cannot count against the next).
 * Configurations run one after another: the suite, the gateway and the
 * reference server share a small machine, and timing-sensitive scenarios
 * (progress, SSE polling) should not be starved by a parallel run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareRuns, type ScenarioComparison } from './conformance-compare.js';
import { REPO_ROOT, startConformanceFixture } from './conformance-fixture.js';
import { startConformanceRig } from './conformance-rig.js';
import { runSuite, type SuiteRun, type SuiteVersion } from './conformance-run.js';

export interface Configuration {
  /** Short label, e.g. "0.2.0-alpha.12 --suite all --spec-version 2026-07-28". */
  name: string;
  version: SuiteVersion;
  args: string[];
}

export interface ConfigurationResult {
  configuration: Configuration;
  direct: SuiteRun;
  gateway: SuiteRun;
  comparisons: ScenarioComparison[];
}

export interface MatrixResult {
  results: ConfigurationResult[];
  /** Fixture install (when not cached) and start. */
  fixtureMs: number;
  totalMs: number;
}

/** One whole suite invocation may take this long; v2 also bounds each scenario (--timeout). */
export const SUITE_TIMEOUT_MS = 60_000;
const SCENARIO_TIMEOUT_MS = '15000';

export function suiteVersion(version: SuiteVersion): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, `node_modules/conformance-${version}/package.json`), 'utf8'));
  return String(pkg.version);
}

export function configurations(): Configuration[] {
  const v1 = suiteVersion('v1');
  const v2 = suiteVersion('v2');
  return [
    // 0.1.16's default suite is "active"; "all" adds its pending scenarios.
    { name: `${v1} (default suite)`, version: 'v1', args: [] },
    { name: `${v1} --suite all`, version: 'v1', args: ['--suite', 'all'] },
    { name: `${v2} --suite all`, version: 'v2', args: ['--suite', 'all', '--timeout', SCENARIO_TIMEOUT_MS] },
    {
      name: `${v2} --suite all --spec-version 2026-07-28`,
      version: 'v2',
      args: ['--suite', 'all', '--spec-version', '2026-07-28', '--timeout', SCENARIO_TIMEOUT_MS],
    },
  ];
}

/** One configuration: the suite directly against `fixtureUrl`, then through a fresh rig in front of it. */
export async function runConfiguration(fixtureUrl: string, configuration: Configuration): Promise<ConfigurationResult> {
  const run = (url: string) =>
    runSuite({ version: configuration.version, url, args: configuration.args, timeoutMs: SUITE_TIMEOUT_MS });
  const direct = await run(fixtureUrl);
  const rig = await startConformanceRig(fixtureUrl);
  let gateway: SuiteRun;
  try {
    gateway = await run(rig.url);
  } finally {
    await rig.close();
  }
  return { configuration, direct, gateway, comparisons: compareRuns(direct, gateway) };
}

/** Every configuration against one reference server. */
export async function runMatrix(
  log: (line: string) => void = () => undefined,
  only: Configuration[] = configurations(),
): Promise<MatrixResult> {
  const started = Date.now();
  const fixture = await startConformanceFixture(log);
  const fixtureMs = Date.now() - started;
  const results: ConfigurationResult[] = [];
  try {
    for (const configuration of only) {
      const result = await runConfiguration(fixture.url, configuration);
      log(`${configuration.name}: direct ${result.direct.ms} ms, through the gateway ${result.gateway.ms} ms`);
      results.push(result);
    }
  } finally {
    await fixture.close();
  }
  return { results, fixtureMs, totalMs: Date.now() - started };
}
