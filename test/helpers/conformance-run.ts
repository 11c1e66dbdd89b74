/**
 * One invocation of the official conformance suite (`conformance server`)
 * against a URL, read back from the files it writes: one folder per scenario
 * with a checks.json. A scenario the suite announced but wrote no file for
 * (it crashed, or the run was cut off) is kept, with no checks and a note,
 * so it counts as zero passed rather than vanishing from the comparison.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './conformance-fixture.js';
import { tempDir } from './tmp.js';

export type SuiteVersion = 'v1' | 'v2';

export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';

export interface Check {
  id: string;
  name?: string;
  description?: string;
  status: CheckStatus;
  errorMessage?: string;
  details?: Record<string, unknown>;
}

export interface ScenarioResult {
  scenario: string;
  passed: number;
  failed: number;
  warnings: number;
  info: number;
  skipped: number;
  checks: Check[];
  /** Set when the suite wrote no results for a scenario it announced. */
  missing?: string;
}

export interface SuiteRun {
  version: SuiteVersion;
  args: string[];
  url: string;
  /** In the order the suite ran them. */
  scenarios: ScenarioResult[];
  exitCode: number | null;
  timedOut: boolean;
  ms: number;
  stdout: string;
  stderr: string;
}

export interface SuiteOptions {
  version: SuiteVersion;
  url: string;
  /** After `server --url URL`, e.g. ['--suite', 'all']. */
  args: string[];
  timeoutMs: number;
}

const SHIM = join(REPO_ROOT, 'conformance/node20/register.mjs');
const ANNOUNCED = /^=== Running scenario: (\S+) ===$/gm;
// <kind>-<scenario>-<ISO time with ':' and '.' replaced by '-'>
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

export function suiteEntry(version: SuiteVersion): string {
  return join(REPO_ROOT, `node_modules/conformance-${version}/dist/index.js`);
}

/** Counts a scenario's checks by status. */
export function tally(scenario: string, checks: Check[], missing?: string): ScenarioResult {
  const count = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
  return {
    scenario,
    passed: count('SUCCESS'),
    failed: count('FAILURE'),
    warnings: count('WARNING'),
    info: count('INFO'),
    skipped: count('SKIPPED'),
    checks,
    ...(missing ? { missing } : {}),
  };
}

/** Reads every scenario folder the suite wrote under `outDir`; `announced` adds those it wrote nothing for. */
export function readResults(outDir: string, announced: string[]): ScenarioResult[] {
  const byScenario = new Map<string, Check[]>();
  for (const entry of existsSync(outDir) ? readdirSync(outDir) : []) {
    const scenario = RESULT_DIR.exec(entry)?.[1];
    const file = join(outDir, entry, 'checks.json');
    if (!scenario || !existsSync(file)) continue;
    byScenario.set(scenario, JSON.parse(readFileSync(file, 'utf8')) as Check[]);
  }
  const order = [...announced, ...[...byScenario.keys()].filter((s) => !announced.includes(s)).sort()];
  return order.map((s) => {
    const checks = byScenario.get(s);
    return checks ? tally(s, checks) : tally(s, [], 'the suite wrote no results for it');
  });
}

/** Runs the suite once; resolves (never rejects for the suite's own failures) when it exits or its time is up. */
export function runSuite(options: SuiteOptions): Promise<SuiteRun> {
  const outDir = tempDir('behalf-conformance-out-');
  const args = ['server', '--url', options.url, ...options.args, '-o', outDir];
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', SHIM, suiteEntry(options.version), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const announced = [...stdout.matchAll(ANNOUNCED)].map((m) => m[1]!);
      const scenarios = readResults(outDir, announced);
      rmSync(outDir, { recursive: true, force: true });
      resolve({
        version: options.version,
        args: options.args,
        url: options.url,
        scenarios,
        exitCode: code,
        timedOut,
        ms: Date.now() - started,
        stdout,
        stderr,
      });
    });
  });
}
