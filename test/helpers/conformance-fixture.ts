/**
 * The conformance suite's reference server (conformance/fixture, vendored
 * unmodified) as its own process on a free port. The vendored folder stays
 * read-only: it is copied to a cache folder under the system's temp dir,
 * named by a hash of its files, and `npm ci` runs there once; later runs
 * (and other worktrees on the machine) reuse that install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lineOf } from './spawned-gateway.js';
import { freePort } from './free-port.js';

/** The repository's root (this file runs from dist/test/helpers/). */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const FIXTURE_SOURCE = join(REPO_ROOT, 'conformance/fixture');
const INSTALL_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 30_000;

export interface ConformanceFixture {
  /** The reference server's MCP endpoint. */
  url: string;
  output: string[];
  close(): Promise<void>;
}

/**
 * Every vendored file goes into the key, not only the lock file: a new
 * everything-server.ts with the same dependencies must not run an old copy.
 */
function fixtureKey(): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(FIXTURE_SOURCE).sort()) {
    hash
      .update(name)
      .update('\0')
      .update(readFileSync(join(FIXTURE_SOURCE, name)))
      .update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The installed copy's folder, installing it first when missing. The install
 * happens in a private folder renamed into place when complete, so a reader
 * never sees half an install and two installers at once do not collide.
 */
export function installedFixture(log: (line: string) => void = () => undefined): string {
  const dir = join(tmpdir(), `behalf-conformance-fixture-${fixtureKey()}`);
  if (existsSync(join(dir, 'node_modules/.bin/tsx'))) return dir;
  const work = mkdtempSync(`${dir}.installing-`);
  try {
    cpSync(FIXTURE_SOURCE, work, { recursive: true });
    log(`conformance fixture: npm ci in ${work}`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const done = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], {
      cwd: work,
      encoding: 'utf8',
      timeout: INSTALL_TIMEOUT_MS,
    });
    if (done.status !== 0) {
      throw new Error(
        `npm ci for the conformance fixture failed (${done.status ?? done.signal ?? done.error?.message}):\n${done.stdout}\n${done.stderr}`,
      );
    }
    try {
      renameSync(work, dir);
    } catch (err) {
      // Another installer finished first: its copy serves, ours is discarded below.
      if (!existsSync(join(dir, 'node_modules/.bin/tsx'))) throw err;
    }
    return dir;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** tsx runs the server in a child of its own: the whole process group is stopped. */
function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    signalGroup(child, 'SIGTERM');
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch (err) {
    // The group is gone already (ESRCH): nothing left to stop.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function startOnce(dir: string, port: number): Promise<ConformanceFixture> {
  const output: string[] = [];
  const child = spawn(join(dir, 'node_modules/.bin/tsx'), ['everything-server.ts'], {
    cwd: dir,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      lineOf(child, /running on/, output),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no "running on" within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    await stopGroup(child);
    (err as Error).message += `\n${output.join('\n')}`;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { url: `http://localhost:${port}/mcp`, output, close: () => stopGroup(child) };
}

/** Installs (once) and starts the reference server on a free port. */
export async function startConformanceFixture(log?: (line: string) => void): Promise<ConformanceFixture> {
  const dir = installedFixture(log);
  let last: unknown;
  // The free port is probed and then released: another process can take it in between, so a few tries.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(dir, await freePort());
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
