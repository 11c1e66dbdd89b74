import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connectStreamable, toolJson } from './helpers/clients.js';
import { tempDir } from './helpers/tmp.js';

/*
 * The package as users get it: `npm pack` of this tree, `npm install` of the tarball into an empty
 * folder (dependencies from the registry, or npm's cache), then the installed `behalf` alone.
 * better-sqlite3 is compiled from source there (build-from-source: prebuild-install would fetch a
 * binary from outside the registry). That compile is most of this test's time: about 55 s of CPU
 * with the package's own -O3, about 17 s unoptimised, so the test compiles with -O0 (what it checks is
 * that the package installs and runs, not how fast SQLite is).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const run = promisify(execFile);
const INSTALL_MS = 8 * 60_000;

/** Run in the consumer's folder: what its code can reach of the installed package. */
const EXPORTS_PROBE = `
import { createRequire } from 'node:module';
const require = createRequire(process.cwd() + '/');
const schema = await import('behalf/schema/evidence.v1.schema.json', { with: { type: 'json' } });
let deepImport = 'imported';
try { await import('behalf/dist/src/review/catalog.js'); } catch (e) { deepImport = e.code; }
console.log(JSON.stringify({ cli: require.resolve('behalf/cli'), evidenceSchema: schema.default.$id, deepImport }));
`;

interface PackEntry {
  filename: string;
  files: Array<{ path: string }>;
}

/** `npm pack` of the built tree; scripts are skipped because `npm test` has just built it. */
async function pack(into: string, dryRun = false): Promise<PackEntry> {
  assert.ok(existsSync(join(ROOT, 'dist/src/cli/main.js')), 'pack from a built tree (npm run build)');
  const args = ['pack', '--json', '--ignore-scripts', '--pack-destination', into, ...(dryRun ? ['--dry-run'] : [])];
  const { stdout } = await run('npm', args, { cwd: ROOT, timeout: 120_000, maxBuffer: 16 << 20 });
  const [entry] = JSON.parse(stdout) as PackEntry[];
  assert.ok(entry);
  return entry;
}

async function waitFor(path: string, child: ChildProcess, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (child.exitCode !== null) throw new Error(`quickstart exited (${child.exitCode}) before ${path} appeared`);
    if (Date.now() > until) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** SIGINT to the quickstart's own process group (npx → sh → node), as Ctrl-C does; SIGKILL if it lingers. */
async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.pid === undefined) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  process.kill(-child.pid, 'SIGINT');
  const timer = setTimeout(() => {
    // Ctrl-C did not end it within 10 s: end the group so the test does not leak processes.
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, 10_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

describe('the npm package as users install it', () => {
  it('the tarball holds what the installed package runs and nothing of the tests or benchmarks', async () => {
    const dir = tempDir('behalf-npm-pack-');
    const files = (await pack(dir, true)).files.map((f) => f.path);
    rmSync(dir, { recursive: true, force: true });
    for (const needed of [
      'bin/behalf.js',
      'dist/src/cli/main.js',
      'dist/demo/quickstart/run.js',
      'schema/gateway.schema.json',
      'schema/evidence.v1.schema.json',
      'schema/audit-record.v1.schema.json',
      'examples/gateway.yaml',
      'LICENSE',
      'SECURITY.md',
      'CHANGELOG.md',
      'THIRD_PARTY.md',
      'docs/threat-model.md',
      'docs/versioning.md',
    ])
      assert.ok(files.includes(needed), `${needed} is in the package`);
    const unwanted = files.filter((f) =>
      /^(test|bench|src|demo|conformance)\/|^dist\/(test|bench)\/|\.map$|\.tsbuildinfo$|\.ts$/.test(f),
    );
    assert.deepEqual(unwanted, [], 'sources, tests, benchmarks, vendored fixtures and source maps stay out');
  });

  it(
    'npm install of the tarball gives a behalf whose --version, quickstart and review work',
    { timeout: 12 * 60_000 },
    async (t) => {
      const work = tempDir('behalf-npm-install-');
      const app = join(work, 'app');
      try {
        const tarball = join(work, (await pack(work)).filename);
        mkdirSync(app);
        // On Node 24 a project takes better-sqlite3 13 by an override, as the README's Install section says:
        // the 12.x that behalf names (13 does not run on Node 20) aborts on 24 when the audit writer thread ends.
        const node24 = Number(process.versions.node.split('.')[0]) >= 24;
        const project = {
          name: 'try-behalf',
          private: true,
          ...(node24 ? { overrides: { 'better-sqlite3': '^13.2.0' } } : {}),
        };
        writeFileSync(join(app, 'package.json'), JSON.stringify(project));
        // The user's own environment, minus the quickstart settings a test run may carry: the defaults are what is tested.
        const { BEHALF_PORT: _port, BEHALF_STATE_DIR: _dir, ...userEnv } = process.env;
        const env = {
          ...userEnv,
          npm_config_build_from_source: 'true',
          npm_config_update_notifier: 'false',
          CFLAGS: '-O0',
          CXXFLAGS: '-O0',
        };
        const started = Date.now();
        await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
          cwd: app,
          env,
          timeout: INSTALL_MS,
          maxBuffer: 16 << 20,
        });
        t.diagnostic(`npm install of the tarball: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal(
          existsSync(join(app, 'node_modules/typescript')),
          false,
          'installing needs no TypeScript: the package ships compiled JavaScript',
        );

        const { stdout: version } = await run('npx', ['--no', '--', 'behalf', '--version'], {
          cwd: app,
          env,
          timeout: 60_000,
        });
        assert.equal(version.trim(), pkg.version);

        // What `exports` names resolves from a consumer's folder; a deep import into dist/ does not (docs/versioning.md).
        const { stdout: resolved } = await run(process.execPath, ['--input-type=module', '-e', EXPORTS_PROBE], {
          cwd: app,
          timeout: 30_000,
        });
        assert.deepEqual(JSON.parse(resolved), {
          cli: join(app, 'node_modules/behalf/bin/behalf.js'),
          evidenceSchema: 'https://behalf.dev/schema/evidence.v1.schema.json',
          deepImport: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
        });

        const child = spawn('npx', ['--no', '--', 'behalf', 'quickstart'], {
          cwd: app,
          env,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
        const file = join(app, '.behalf/quickstart.json');
        try {
          await waitFor(file, child, 60_000);
          const qs = JSON.parse(readFileSync(file, 'utf8')) as {
            gateway: string;
            users: Record<string, { headers: Record<string, string> }>;
            review: { profile: string; config: string };
          };
          const alice = await connectStreamable(qs.gateway, qs.users.alice!.headers);
          const own = toolJson(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } }));
          assert.equal(own.owner, 'alice', "alice's call is served");
          await assert.rejects(
            alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } }),
            /Forbidden/,
            "bob's customer is refused to her",
          );
          await alice.close();

          const review = ['--no', '--', 'behalf', 'review', '--target', qs.gateway, '--profile', qs.review.profile];
          const { stdout: summary } = await run('npx', [...review, '--config', qs.review.config, '--out', 'review'], {
            cwd: app,
            env,
            timeout: 180_000,
            maxBuffer: 16 << 20,
          });
          assert.match(summary, /BND-05\s+per-user-authorization\s+pass/);
          assert.doesNotMatch(summary, /\s(fail|partial|not-assessed)\s/, 'every check of the quickstart passes');
          assert.ok(existsSync(join(app, 'review/evidence.json')));
        } catch (err) {
          process.stderr.write(`quickstart output:\n${out}\n`);
          throw err;
        } finally {
          await stop(child);
        }
        assert.equal(existsSync(file), false, 'Ctrl-C removed quickstart.json');
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  );
});
