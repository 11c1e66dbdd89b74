/**
 * Every shell (```sh, ```bash) and TypeScript (```ts) example in README.md
 * runs, as written, against a live quickstart, in a folder laid out as a
 * user's: `.behalf/` is the quickstart's state folder, `npx behalf` and the
 * SDK resolve from `node_modules`, `examples/` is the repository's. Blocks run
 * in README order (a later one may use a file an earlier one wrote), each must
 * exit 0. A failure names the README line of the block.
 *
 * Markers — an HTML comment on the lines right before the fence:
 *   <!-- readme-test: skip — why -->    not run (npm start itself, a browser UI, a
 *                                        fleet with nginx); the reason is required
 *   <!-- readme-test: stdio-server — note -->
 *                                        the block is an MCP stdio server's command
 *                                        line (mcp-remote): the test connects a client
 *                                        to it and calls a tool as alice
 *   <!-- readme-test: expect — TEXT --> the output must contain TEXT (repeatable)
 * A new example should run as written against the quickstart; if it cannot,
 * mark it skip with the reason.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import { readmeBlocks, type ReadmeBlock } from './helpers/readme-blocks.js';
import { toolJson } from './helpers/clients.js';
import { tempDir } from './helpers/tmp.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const README = join(REPO, 'README.md');
const BLOCK_TIMEOUT_MS = 90_000;

/** A user's project folder: node_modules links to this checkout's (and behalf itself), examples/ to the repo's. */
function userFolder(): string {
  const dir = tempDir('behalf-readme-');
  const nm = join(dir, 'node_modules');
  mkdirSync(join(nm, '.bin'), { recursive: true });
  for (const entry of readdirSync(join(REPO, 'node_modules'))) {
    if (entry !== '.bin') symlinkSync(join(REPO, 'node_modules', entry), join(nm, entry));
  }
  for (const bin of readdirSync(join(REPO, 'node_modules', '.bin')))
    symlinkSync(join(REPO, 'node_modules', '.bin', bin), join(nm, '.bin', bin));
  symlinkSync(REPO, join(nm, 'behalf'));
  symlinkSync(join(REPO, 'bin', 'behalf.js'), join(nm, '.bin', 'behalf'));
  symlinkSync(join(REPO, 'examples'), join(dir, 'examples'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'readme-user', private: true, type: 'module', dependencies: { behalf: '*' } }),
  );
  return dir;
}

function where(b: ReadmeBlock): string {
  return `README.md:${b.line} (\`\`\`${b.lang} block)`;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    // Its own process group, so a block that leaves a process behind can be ended as a whole.
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), BLOCK_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function runBlock(b: ReadmeBlock, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  let r: { code: number | null; out: string };
  if (b.lang === 'ts') {
    const js = ts.transpileModule(b.code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const file = join(cwd, `readme-block-${b.line}.mjs`);
    writeFileSync(file, js);
    r = await run(process.execPath, [file], cwd, env);
  } else {
    r = await run('bash', ['-c', `set -eo pipefail\n${b.code}`], cwd, env);
  }
  assert.equal(
    r.code,
    0,
    `${where(b)} failed (exit ${r.code}); fix the README example or mark it skip with a reason:\n${r.out}`,
  );
  for (const text of b.expect) assert.ok(r.out.includes(text), `${where(b)}: the output lacks "${text}":\n${r.out}`);
  return r.out;
}

/** The block as an MCP stdio server (mcp-remote): alice's own customer is served, bob's refused. */
async function runStdioServer(b: ReadmeBlock, cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  // setsid: the command and whatever it starts (npx, node) share one process group, ended together below.
  const transport = new StdioClientTransport({
    command: 'setsid',
    args: ['bash', '-c', b.code],
    cwd,
    env: env as Record<string, string>,
    stderr: 'pipe',
  });
  let log = '';
  transport.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const client = new Client({ name: 'readme-test', version: '0.0.0' });
  try {
    await client.connect(transport);
    const own = await client.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
    assert.equal(toolJson(own).owner, 'alice', `${where(b)}: alice's own customer through it`);
    const other = await client
      .callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } })
      .catch((err: Error) => err);
    assert.match(
      other instanceof Error ? other.message : JSON.stringify(other),
      /Forbidden|-32003/,
      `${where(b)}: bob's customer refused`,
    );
  } catch (err) {
    assert.fail(`${where(b)} failed as an MCP stdio server: ${(err as Error).message}\n${log}`);
  } finally {
    const pid = transport.pid;
    await client.close();
    try {
      if (pid) process.kill(-pid, 'SIGTERM');
    } catch {
      // The group has already exited with its leader.
    }
  }
}

describe('README examples against a live quickstart', () => {
  const blocks = readmeBlocks(readFileSync(README, 'utf8'));
  let qs: Quickstart;
  let cwd: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    cwd = userFolder();
    const { BEHALF_STATE_DIR: _unused, ...base } = process.env;
    env = {
      ...base,
      npm_config_yes: 'false',
      npm_config_update_notifier: 'false',
      MCP_REMOTE_CONFIG_DIR: join(cwd, '.mcp-auth'),
    };
    qs = await startQuickstart({ ...env, BEHALF_STATE_DIR: join(cwd, '.behalf'), BEHALF_PORT: '' });
  });
  after(async () => {
    await qs?.close();
  });

  it('finds the examples, and every marker is readable (a skip says why)', () => {
    assert.ok(blocks.filter((b) => !b.skip).length >= 8, `runnable blocks: ${blocks.map(where).join(', ')}`);
    for (const b of blocks) assert.deepEqual(b.problems, [], where(b));
    // Control for the parser: a skip without a reason is a problem.
    assert.equal(readmeBlocks('<!-- readme-test: skip -->\n```sh\ntrue\n```\n')[0]!.problems.length, 1);
  });

  for (const b of blocks) {
    const title = `${where(b)}: ${b.code.split('\n')[0]!.slice(0, 70)}`;
    if (b.skip) {
      it(title, { skip: b.skip }, () => {});
      continue;
    }
    it(title, { timeout: BLOCK_TIMEOUT_MS + 10_000 }, async () => {
      if (b.stdioServer) return runStdioServer(b, cwd, env);
      await runBlock(b, cwd, env);
    });
  }
});
