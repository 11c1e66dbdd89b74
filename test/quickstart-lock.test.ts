import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { LOCK_FILE } from '../demo/quickstart/lock.js';
import { startQuickstart } from '../demo/quickstart/run.js';
import { connectStreamable, toolJson } from './helpers/clients.js';
import { tempDir } from './helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../bin/behalf.js', import.meta.url));

function runSecond(dir: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [BIN, 'quickstart'], {
    env: { ...process.env, BEHALF_STATE_DIR: dir, BEHALF_PORT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const timer = setTimeout(() => child.kill('SIGINT'), 20_000);
  return new Promise((r) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      r({ code, stderr, stdout });
    }),
  );
}

async function aliceReadsOwn(gateway: string, headers: Record<string, string>): Promise<void> {
  const alice = await connectStreamable(gateway, headers);
  try {
    const res = await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
    assert.equal(toolJson(res).owner, 'alice');
  } finally {
    await alice.close();
  }
}

describe('one quickstart per state folder (quickstart.lock)', () => {
  it('refuses a second quickstart in the same folder, naming the first; the first keeps serving', async () => {
    const dir = tempDir('behalf-qs-lock-');
    const first = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: dir, BEHALF_PORT: '' });
    try {
      const before = readFileSync(join(dir, 'quickstart.json'), 'utf8');
      const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as Record<string, unknown>;
      assert.equal(lock.pid, process.pid);
      assert.equal(lock.gateway, first.file.gateway);

      const second = await runSecond(dir);
      assert.equal(second.code, 3, `exit 3 (unavailable); stderr: ${second.stderr}`);
      assert.match(second.stderr, new RegExp(`already running from .*pid ${process.pid}`));
      assert.ok(second.stderr.includes(first.file.gateway), 'the refusal names the running gateway');
      assert.match(second.stderr, /BEHALF_STATE_DIR=/);
      assert.doesNotMatch(second.stdout, /is running/, 'the second never announced itself');
      // oidc-provider's Node-20 runtime warning is not printed (the README explains it once)…
      assert.doesNotMatch(second.stderr, /oidc-provider WARNING/);
      // …while the library itself still prints it here on a runtime before 22 (control: the filter is what hides it).
      if ((process.release as { lts?: string }).lts?.localeCompare('Jod') === -1) {
        const raw = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('oidc-provider')"]);
        assert.match(raw.stderr.toString(), /oidc-provider WARNING: Unsupported runtime/);
      }

      // The first one's files are untouched and a real call through it still succeeds with its headers.
      assert.equal(readFileSync(join(dir, 'quickstart.json'), 'utf8'), before);
      await aliceReadsOwn(first.file.gateway, first.file.users.alice!.headers);
    } finally {
      await first.close();
    }
    // Stopping removed what it wrote (lock, credentials) and left the data folders it does not own alone.
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    assert.equal(existsSync(join(dir, 'quickstart.json')), false);
    assert.equal(existsSync(join(dir, 'dev-secrets.json')), false);
    assert.ok(readdirSync(dir).includes('files'));
  });

  it('takes over a stale lock whose process is gone, and a second folder runs next to the first', async () => {
    const dir = tempDir('behalf-qs-stale-');
    // A pid that certainly existed and has exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: Number(dead), startedAt: '2026-01-01T00:00:00Z' }));
    const qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: dir, BEHALF_PORT: '' });
    const other = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: `${dir}-2`, BEHALF_PORT: '' });
    try {
      assert.equal((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid, process.pid);
      assert.notEqual(other.file.gateway, qs.file.gateway);
      await aliceReadsOwn(qs.file.gateway, qs.file.users.alice!.headers);
      await aliceReadsOwn(other.file.gateway, other.file.users.alice!.headers);
    } finally {
      await other.close();
      await qs.close();
    }
  });
});
