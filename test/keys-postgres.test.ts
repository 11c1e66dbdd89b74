/**
 * `behalf keys` with a config whose trail is PostgreSQL (a fleet's): key
 * changes are recorded in that trail — the one every instance writes and
 * `behalf audit verify --postgres` checks — and no local SQLite file appears.
 * A trail that cannot be reached stops the change before anything is written.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createTestDb, type TestDb } from './helpers/pg-db.js';
import { OWN_ROOT } from './helpers/spawned-gateway.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const MAIN = join(OWN_ROOT, 'src/cli/main.js');

async function behalf(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function writeConfig(folder: string): string {
  const file = join(folder, 'gateway.yaml');
  writeFileSync(
    file,
    stringify({
      server: { host: '127.0.0.1', port: 0 },
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', oauthClientIds: ['agent'] }],
      userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
      upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
      audit: { postgres: { url: 'file:pg-url' } },
      keys: { file: 'keys.json' },
    }),
  );
  return file;
}

describe('behalf keys records its changes in the configured PostgreSQL trail', () => {
  let db: TestDb;
  before(async () => {
    db = await createTestDb();
  });
  after(async () => {
    await db?.drop();
  });

  it('create, rotate and revoke land in PostgreSQL, verifiable; no SQLite trail is made', async () => {
    const folder = tempDir('behalf-keys-pg-');
    writeFileSync(join(folder, 'pg-url'), db.url, { mode: 0o600 });
    const cfg = writeConfig(folder);
    for (const args of [
      ['create', '--client', 'agent', '--id', 'agent-1'],
      ['rotate', '--id', 'agent-1', '--new-id', 'agent-2'],
      ['revoke', '--id', 'agent-1', '--reason', 'test'],
    ]) {
      const r = await behalf('keys', ...args, '--config', cfg);
      assert.equal(r.code, 0, `keys ${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /recorded in .* only/, 'the change is audited');
    }
    const rows = await db.query<{ outcome: string; credential_id: string }>(
      "SELECT outcome, credential_id FROM audit_events WHERE kind = 'key' ORDER BY seq",
    );
    assert.deepEqual(
      rows.map((r) => `${r.outcome} ${r.credential_id}`),
      ['created agent-1', 'rotated agent-1', 'created agent-2', 'revoked agent-1'],
    );
    assert.deepEqual(
      readdirSync(folder).filter((f) => /\.db/.test(f)),
      [],
      'no local SQLite trail',
    );
    const created = JSON.parse(readFileSync(join(folder, 'keys.json'), 'utf8')) as { keys: { id: string }[] };
    assert.deepEqual(created.keys.map((k) => k.id).sort(), ['agent-1', 'agent-2']);
    const verify = await behalf('audit', 'verify', '--postgres', db.url);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  it('an unreachable PostgreSQL trail stops the change: exit 3, the store untouched', async () => {
    const folder = tempDir('behalf-keys-pg-');
    // Nothing listens on port 1: the trail cannot be opened.
    writeFileSync(join(folder, 'pg-url'), db.urlVia(1), { mode: 0o600 });
    const cfg = writeConfig(folder);
    const refused = await behalf('keys', 'create', '--client', 'agent', '--id', 'agent-x', '--config', cfg);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /cannot open the audit trail PostgreSQL .*nothing was changed/);
    assert.equal(existsSync(join(folder, 'keys.json')), false, 'no key store written');
    // Positive control: the same command with the trail reachable goes through.
    writeFileSync(join(folder, 'pg-url'), db.url, { mode: 0o600 });
    const made = await behalf('keys', 'create', '--client', 'agent', '--id', 'agent-x', '--config', cfg);
    assert.equal(made.code, 0, made.stderr);
  });
});
