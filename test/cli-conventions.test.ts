/**
 * CLI conventions a first-hour user relies on (issue 16): --help everywhere,
 * exit codes in `behalf --help`, keys and audit finding the quickstart's files
 * in its folder, a table from `audit query`, a hint on EADDRINUSE, config
 * check resolving every env:/file: reference and naming a misspelt tag key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import { connectStreamable } from './helpers/clients.js';
import { tempDir } from './helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../bin/behalf.js', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HASH = `sha256:${'ab'.repeat(32)}`;

function behalf(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const { BEHALF_STATE_DIR: _drop, ...base } = process.env;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? tempDir(),
    env: { ...base, ...opts.env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = [
  ['quickstart'],
  ['token'],
  ['gateway'],
  ['config'],
  ['config', 'check'],
  ['config', 'schema'],
  ['keys'],
  ['keys', 'generate'],
  ['keys', 'create'],
  ['keys', 'list'],
  ['keys', 'rotate'],
  ['keys', 'revoke'],
  ['audit'],
  ['audit', 'tail'],
  ['audit', 'query'],
  ['audit', 'verify'],
  ['audit', 'export'],
  ['audit', 'migrate'],
  ['policy'],
  ['policy', 'test'],
  ['policy', 'explain'],
  ['review'],
  ['review', 'diff'],
];

describe('behalf --help', () => {
  it('every command and subcommand answers --help with its usage and exit 0', () => {
    for (const cmd of COMMANDS) {
      const r = behalf([...cmd, '--help']);
      assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /usage/i, cmd.join(' '));
      assert.equal(r.stderr, '', `${cmd.join(' ')} --help writes nothing to stderr`);
    }
    // Control: an unknown option is still a usage error.
    assert.equal(behalf(['token', '--nonsense']).code, 2);
  });

  it('lists every exit code', () => {
    const r = behalf(['--help']);
    assert.equal(r.code, 0);
    for (const code of ['0', '1', '2', '3', '4'])
      assert.match(r.stdout, new RegExp(`^  ${code}  `, 'm'), `exit ${code}`);
  });

  it('.behalf/ and review/ are ignored by git in this repository', () => {
    const ignored = readFileSync(join(REPO, '.gitignore'), 'utf8').split('\n');
    assert.ok(ignored.includes('.behalf/'));
    assert.ok(ignored.includes('review/'));
  });
});

describe('in a quickstart folder', () => {
  let qs: Quickstart;
  let cwd: string;
  before(async () => {
    cwd = tempDir('behalf-cli-qs-');
    qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: join(cwd, '.behalf'), BEHALF_PORT: '' });
    // One real call, so the audit trail holds a decision of alice's.
    const alice = await connectStreamable(qs.file.gateway, qs.file.users.alice!.headers);
    await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
    await alice.close();
  });
  after(async () => {
    await qs?.close();
  });

  it('keys list and audit query need no --config, and audit query prints a table (--json: lines)', () => {
    const keys = behalf(['keys', 'list'], { cwd });
    assert.equal(keys.code, 0, keys.stderr);
    assert.match(keys.stdout, /demo-agent/);
    assert.match(keys.stderr, /using the quickstart's config \.behalf\/gateway\.yaml/);

    const table = behalf(['audit', 'query', '--user', 'alice'], { cwd });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^seq\s+time\s+kind\s+user\s+client\s+method\s+target\s+decision/);
    assert.ok(
      lines.some((l) => /\sdecision\s+alice\s+demo-agent\s+tools\/call\s+get_customer\s+allow\s/.test(l)),
      table.stdout,
    );
    const json = behalf(['audit', 'query', '--user', 'alice', '--json'], { cwd });
    const records = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { userSubject?: string });
    assert.ok(records.length > 0 && records.every((r) => r.userSubject === 'alice'));

    // Control: outside a quickstart folder the source is still required.
    assert.equal(behalf(['audit', 'query']).code, 2);
  });
});

describe('hints and config check', () => {
  let busy: Server;
  let port: number;
  before(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    port = (busy.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => busy.close(() => r())));

  function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      server: { host: '127.0.0.1', port },
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: HASH }], oauthClientIds: ['agent'] }],
      userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
      upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
      policy: { rules: [{ id: 'r1', effect: 'allow', tools: ['get_customer'], when: 'true' }] },
      audit: { sqlitePath: ':memory:' },
      ...extra,
    };
  }
  const write = (raw: unknown) => {
    const file = join(tempDir('behalf-cli-config-'), 'gateway.yaml');
    writeFileSync(file, stringify(raw));
    return file;
  };

  it('a port in use names server.port (gateway) and BEHALF_PORT (quickstart)', () => {
    const gw = behalf(['gateway', '--config', write(config())]);
    assert.notEqual(gw.code, 0);
    assert.match(gw.stderr, /EADDRINUSE/);
    assert.match(gw.stderr, /hint: port \d+ is in use.*server\.port/);
    const q = behalf(['quickstart'], { env: { BEHALF_PORT: String(port), BEHALF_STATE_DIR: join(tempDir(), 's') } });
    assert.notEqual(q.code, 0);
    assert.match(q.stderr, /hint: port \d+ is in use.*BEHALF_PORT=/);
  });

  it('config check resolves every env:/file: reference, naming each missing one by its field, never a value', () => {
    const secret = 'a-value-that-must-never-be-printed-0123456789';
    const raw = config({
      state: { redis: { url: 'env:BEHALF_TEST_UNSET_REDIS_URL' } },
      audit: { sqlitePath: ':memory:', arguments: { digestKey: 'file:missing-digest.key' } },
      upstreams: {
        crm: { transport: 'stdio', command: 'node', args: ['crm.js'], env: { TOKEN: 'env:BEHALF_TEST_SET' } },
      },
    });
    const file = write(raw);
    const env = { BEHALF_TEST_SET: secret };
    const r = behalf(['config', 'check', '--config', file], { env });
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /state\.redis\.url: env:BEHALF_TEST_UNSET_REDIS_URL: environment variable BEHALF_TEST_UNSET_REDIS_URL is not set/,
    );
    assert.ok(
      r.stderr.includes(
        `audit.arguments.digestKey: file:missing-digest.key: ${join(dirname(file), 'missing-digest.key')} does not exist`,
      ),
      r.stderr,
    );
    assert.doesNotMatch(r.stderr, /upstreams\.crm\.env\.TOKEN/, 'a set variable is not reported');
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));

    // Positive control: with both present, the same file is valid.
    writeFileSync(join(dirname(file), 'missing-digest.key'), 'k'.repeat(32));
    const ok = behalf(['config', 'check', '--config', file], {
      env: { ...env, BEHALF_TEST_UNSET_REDIS_URL: 'redis://127.0.0.1:6379' },
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid/);
  });

  it('a misspelt tag key inside a tagged block is named', () => {
    const r = behalf([
      'config',
      'check',
      '--config',
      write(config({ upstreams: { crm: { trasnport: 'stdio', command: 'node' } } })),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /upstreams\.crm\.transport: unknown key "trasnport" \(did you mean "transport"\?\); "transport" is missing \(one of stdio \| streamable-http \| sse\)/,
    );
  });
});
