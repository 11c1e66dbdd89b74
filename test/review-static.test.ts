import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { DAY_MS } from '../src/keys/lifecycle.js';
import { bnd10 } from '../src/review/checks/bnd-10-credential-management.js';
import { ReviewContext, type ReviewInputs } from '../src/review/context.js';
import { profileSchema } from '../src/review/profile.js';
import { splitCommand } from '../src/review/static/command.js';
import { staticDownstreamEvidence } from '../src/review/static/downstream.js';
import { ACCEPT_FILE, findingFingerprint } from '../src/review/static/repo-scan.js';
import { staticTlsEvidence } from '../src/review/static/tls.js';
import { commandLineEvidence, inheritanceEvidence, staticTransportEvidence } from '../src/review/static/transport.js';
import { statusOf, type EvidenceItem } from '../src/review/types.js';
import { bitsPerChar } from '../src/shared/secret-shapes.js';
import { tempDir } from './helpers/tmp.js';

/**
 * The static side of `behalf review` (BND-10, and the static parts of
 * BND-02, BND-09 and BND-12): real config files, key stores, audit trails
 * and repositories on disk, and real child processes for what a stdio
 * command would inherit. Every secret is made at run time (so this file is
 * not itself a finding), and every result is checked not to contain it.
 */

const alnum = (n: number, set = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789') =>
  Array.from(randomBytes(n), (b) => set[b % set.length]).join('');
const awsKeyId = () => `AKIA${alnum(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`;
const githubToken = () => `ghp_${alnum(36)}`;
/** Random, with letters and digits, at ≥ 3.5 bits per character: what the entropy rule looks for. */
function randomKey(): string {
  for (;;) {
    const k = randomBytes(24).toString('base64url');
    if (/\d/.test(k) && /[A-Za-z]/.test(k) && bitsPerChar(k) >= 3.5) return k;
  }
}
const pemKey = () =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const iso = (ms: number) => new Date(ms).toISOString();

function ctxFor(
  inputs: Partial<ReviewInputs>,
  accepted: { fingerprint: string; reason: string }[] = [],
): ReviewContext {
  const profile = accepted.length
    ? { profile: profileSchema.parse({ acceptedFindings: accepted }), dir: process.cwd() }
    : undefined;
  return new ReviewContext({ transport: 'streamable', ...(profile ? { profile } : {}), ...inputs });
}

const CREATED = iso(Date.now() - 10 * DAY_MS);

/** A config the gateway itself accepts: one client key made 10 days ago, a token-exchange upstream, every secret by reference. */
function cleanConfig(): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0, publicUrl: 'https://mcp.example.com' },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: `sha256:${sha256('the key')}`, createdAt: CREATED }] }],
    userAuth: { issuers: [{ issuer: 'https://idp.example.com' }] },
    upstreams: {
      crm: {
        transport: 'streamable-http',
        url: 'https://crm.example.com/mcp',
        downstream: { strategy: 'token-exchange', clientId: 'gateway', clientSecret: 'env:GATEWAY_SECRET' },
      },
    },
    keys: { maxAgeDays: 90 },
    audit: { sqlitePath: ':memory:', arguments: { digestKey: 'file:digest.key' } },
  };
}

function writeConfig(raw: unknown, dir = tempDir('behalf-review-static-')): string {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

const outcomes = (items: EvidenceItem[]) => items.map((i) => i.outcome);
const byProbe = (items: EvidenceItem[], re: RegExp) => items.filter((i) => re.test(i.probe));
function assertNoSecret(value: unknown, secrets: string[]): void {
  const json = JSON.stringify(value);
  for (const s of secrets) assert.ok(!json.includes(s), `a secret (${s.length} chars) appears in the results`);
}

describe('BND-10 without anything to read', () => {
  it('is not assessed, and says what to give', async () => {
    const out = await bnd10(ctxFor({}));
    assert.equal(out.status, 'not-assessed');
    assert.equal(out.reason, 'credential management is not visible from outside: give --config and/or --repo');
    assert.deepEqual(out.evidence, []);
  });
  it('the static parts of the other checks give nothing', () => {
    const ctx = ctxFor({});
    assert.deepEqual(staticTlsEvidence(ctx), []);
    assert.deepEqual(staticDownstreamEvidence(ctx), []);
    assert.deepEqual(staticTransportEvidence(ctx), []);
  });
});

describe('BND-10 on a config', () => {
  it('positive control: a clean config passes, and the pack fingerprints its file and keys', async () => {
    const file = writeConfig(cleanConfig());
    const ctx = ctxFor({ configPath: file });
    const out = await bnd10(ctx);
    assert.equal(statusOf(out.evidence), 'pass', JSON.stringify(out.evidence, null, 1));
    assert.equal(out.status ?? statusOf(out.evidence), 'pass');
    const refs = byProbe(out.evidence, /^secret by reference$/);
    assert.deepEqual(refs.map((r) => [r.location?.path, r.observed]).sort(), [
      ['audit.arguments.digestKey', 'file:digest.key'],
      ['upstreams.crm.downstream.clientSecret', 'env:GATEWAY_SECRET'],
    ]);
    const age = byProbe(out.evidence, /^age of key k1/);
    assert.equal(age.length, 1);
    assert.equal(age[0]!.outcome, 'ok');
    assert.match(age[0]!.observed!, /10 days ago/);
    assert.equal(byProbe(out.evidence, /^rotation record$/)[0]?.outcome, 'ok');
    assert.equal(ctx.facts.configHash, `sha256:${sha256(readFileSync(file))}`);
    assert.match(ctx.facts.keysHash!, /^sha256:[0-9a-f]{64}$/);
    // Public state only: the key's hash is not in the fingerprint's input, and a changed date changes it.
    const again = ctxFor({ configPath: file });
    await bnd10(again);
    assert.equal(again.facts.keysHash, ctx.facts.keysHash);
    const rotated = cleanConfig();
    (rotated.clients as { apiKeys: { hash: string }[] }[])[0]!.apiKeys[0]!.hash = `sha256:${sha256('another key')}`;
    const sameState = ctxFor({ configPath: writeConfig(rotated) });
    await bnd10(sameState);
    assert.equal(sameState.facts.keysHash, ctx.facts.keysHash, 'the key hash (secret-derived) must not feed keysHash');
    (rotated.clients as { apiKeys: { createdAt: string }[] }[])[0]!.apiKeys[0]!.createdAt = iso(Date.now() - DAY_MS);
    const newer = ctxFor({ configPath: writeConfig(rotated) });
    await bnd10(newer);
    assert.notEqual(newer.facts.keysHash, ctx.facts.keysHash);
  });

  it('reports literal secrets by path, never by value, and still judges the rest', async () => {
    const token = githubToken();
    const clientSecret = randomKey();
    const raw = cleanConfig();
    (raw.upstreams as Record<string, unknown>).tools = {
      transport: 'stdio',
      command: 'node',
      args: ['server.js'],
      env: { GITHUB_TOKEN: { value: token } },
    };
    (raw.upstreams as Record<string, { downstream: Record<string, unknown> }>).crm!.downstream.clientSecret =
      clientSecret;
    const ctx = ctxFor({ configPath: writeConfig(raw) });
    const out = await bnd10(ctx);
    assert.equal(out.status ?? statusOf(out.evidence), 'fail');
    const literals = byProbe(out.evidence, /^literal secret in the config$/);
    assert.deepEqual(literals.map((l) => [l.outcome, l.location?.path]).sort(), [
      ['bad', 'upstreams.crm.downstream.clientSecret'],
      ['bad', 'upstreams.tools.env.GITHUB_TOKEN.value'],
    ]);
    assert.match(out.finding, /2 literal secret\(s\) in the config/);
    assert.ok(byProbe(out.evidence, /gateway's own check/).length, "the loader's refusal is reported, not thrown");
    // The schema refuses clientSecret, yet the upstream's strategy is still read.
    assert.deepEqual(outcomes(staticDownstreamEvidence(ctx)).sort(), ['bad', 'ok']);
    const transport = staticTransportEvidence(ctx);
    const env = byProbe(transport, /^environment of stdio upstream tools$/);
    assert.equal(env[0]?.outcome, 'bad');
    assert.match(env[0]!.observed!, /GITHUB_TOKEN/);
    assertNoSecret(
      [out, staticTlsEvidence(ctx), staticDownstreamEvidence(ctx), transport, ctx.facts],
      [token, clientSecret],
    );
  });

  it('secrets by reference only: one ok item per reference', async () => {
    const raw = cleanConfig();
    (raw.upstreams as Record<string, unknown>).tools = {
      transport: 'stdio',
      command: 'node',
      env: { API_TOKEN: 'env:TOOLS_TOKEN', CERT: 'file:/etc/tools/cert.pem' },
    };
    (raw.server as Record<string, unknown>).tls = { cert: 'file:tls.crt', key: 'file:tls.key' };
    const out = await bnd10(ctxFor({ configPath: writeConfig(raw) }));
    assert.equal(out.status ?? statusOf(out.evidence), 'pass');
    assert.deepEqual(
      byProbe(out.evidence, /^secret by reference$/)
        .map((r) => r.location?.path)
        .sort(),
      [
        'audit.arguments.digestKey',
        'server.tls.cert',
        'server.tls.key',
        'upstreams.crm.downstream.clientSecret',
        'upstreams.tools.env.API_TOKEN',
        'upstreams.tools.env.CERT',
      ],
    );
    assert.equal(byProbe(out.evidence, /^literal secrets in the config$/)[0]?.outcome, 'ok');
  });

  it('keys: an old store key fails its age, a fresh one passes, the store and the audit trail are the rotation record', async () => {
    const dir = tempDir('behalf-review-keys-');
    const now = Date.now();
    const entry = (id: string, created: number, extra: Record<string, unknown> = {}) => ({
      id,
      kind: 'api-key',
      client: 'agent',
      hash: `sha256:${sha256(id)}`,
      createdAt: iso(created),
      notBefore: iso(created),
      notAfter: iso(created + 400 * DAY_MS),
      status: 'active',
      ...extra,
    });
    writeFileSync(
      join(dir, 'keys.json'),
      JSON.stringify({
        version: 1,
        keys: [
          entry('old', now - 200 * DAY_MS),
          entry('fresh', now - 5 * DAY_MS, { replaces: 'gone' }),
          entry('gone', now - 300 * DAY_MS, { status: 'revoked', revokedAt: iso(now - 5 * DAY_MS) }),
        ],
      }),
    );
    const audit = new SqliteAuditStore(join(dir, 'audit.db'));
    await audit.append({
      ts: now,
      kind: 'key',
      outcome: 'rotated',
      credentialId: 'fresh',
      reason: 'behalf keys rotate',
    });
    await audit.close();
    const raw = { ...cleanConfig(), keys: { file: 'keys.json', maxAgeDays: 90 }, audit: { sqlitePath: 'audit.db' } };
    const file = writeConfig(raw, dir);
    const ctx = ctxFor({ configPath: file });
    const out = await bnd10(ctx);
    const age = (id: string) => byProbe(out.evidence, new RegExp(`^age of key ${id} `))[0];
    assert.equal(age('old')?.outcome, 'bad');
    assert.match(age('old')!.observed!, /200 days ago/);
    assert.equal(age('fresh')?.outcome, 'ok');
    assert.equal(age('gone')?.outcome, 'info', 'a revoked key is history, not a finding');
    assert.equal(age('k1')?.outcome, 'ok');
    const rec = byProbe(out.evidence, /^rotation record$/)[0]!;
    assert.equal(rec.outcome, 'ok');
    assert.match(rec.observed!, /key store records creation dates for 3 key\(s\) and 1 rotation/);
    assert.match(rec.observed!, /audit trail holds key events \(1 rotated\)/);
    assert.equal(out.status ?? statusOf(out.evidence), 'fail');
    assert.match(out.finding, /1 key\(s\) past their rotation age/);
    // The audit trail was opened read-only: still one record.
    const check = new SqliteAuditStore(join(dir, 'audit.db'), { readonly: true });
    assert.equal((await check.query({ limit: 10 })).length, 1);
    await check.close();
    assertNoSecret(out, ['sha256:']);
  });

  it('keys: an undated config key cannot be aged, and with no other record there is no rotation record', async () => {
    const raw = cleanConfig();
    delete (raw.keys as Record<string, unknown>).maxAgeDays;
    delete (raw.clients as { apiKeys: Record<string, unknown>[] }[])[0]!.apiKeys[0]!.createdAt;
    const out = await bnd10(ctxFor({ configPath: writeConfig(raw) }));
    assert.equal(byProbe(out.evidence, /^age of key k1/)[0]?.outcome, 'not-assessed');
    assert.match(byProbe(out.evidence, /^rotation age$/)[0]!.observed!, /default of 90 days/);
    assert.equal(byProbe(out.evidence, /^rotation record$/)[0]?.outcome, 'bad');
    assert.equal(out.status ?? statusOf(out.evidence), 'fail');
  });

  it('an unreadable config is not assessed by every static part, never a crash', async () => {
    const dir = tempDir('behalf-review-bad-');
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'server: [unclosed\n');
    const ctx = ctxFor({ configPath: file });
    const out = await bnd10(ctx);
    assert.equal(out.status ?? statusOf(out.evidence), 'not-assessed');
    assert.match(out.evidence[0]!.detail!, /not valid YAML at line/);
    for (const items of [staticTlsEvidence(ctx), staticDownstreamEvidence(ctx), staticTransportEvidence(ctx)])
      assert.deepEqual(outcomes(items), ['not-assessed']);
    const missing = ctxFor({ configPath: join(dir, 'nope.yaml') });
    assert.deepEqual(outcomes(staticDownstreamEvidence(missing)), ['not-assessed']);
  });
});

describe('BND-09 static: downstream strategies', () => {
  it('per user → ok; service account and smuggled shared credentials → bad; none → info', () => {
    const raw = cleanConfig();
    Object.assign(raw.upstreams as Record<string, unknown>, {
      assert: {
        transport: 'streamable-http',
        url: 'https://a.example.com/mcp',
        downstream: { strategy: 'user-assertion' },
      },
      shared: {
        transport: 'streamable-http',
        url: 'https://s.example.com/mcp',
        downstream: { strategy: 'service-account', headers: { authorization: 'env:SA_TOKEN' } },
      },
      headers: {
        transport: 'streamable-http',
        url: 'https://h.example.com/mcp',
        headers: { 'x-api-key': 'env:H_KEY' },
      },
      plain: { transport: 'streamable-http', url: 'https://p.example.com/mcp' },
      mine: {
        transport: 'stdio',
        command: 'node',
        perUser: { credentialEnv: 'USER_TOKEN' },
        downstream: { strategy: 'token-exchange', clientId: 'gateway', clientSecret: 'env:GATEWAY_SECRET' },
      },
      files: { transport: 'stdio', command: 'node', args: ['fs.js', '/data/{user}'] },
      envshared: { transport: 'stdio', command: 'node', env: { DB_PASSWORD: 'env:DB_PASSWORD' } },
    });
    const items = staticDownstreamEvidence(ctxFor({ configPath: writeConfig(raw) }));
    const by = Object.fromEntries(items.map((i) => [/upstream (\S+)/.exec(i.probe)![1], i]));
    assert.equal(by.crm?.outcome, 'ok');
    assert.equal(by.assert?.outcome, 'ok');
    assert.equal(by.mine?.outcome, 'ok');
    assert.match(by.mine!.observed!, /per-user process, the user's credential in USER_TOKEN/);
    assert.equal(by.shared?.outcome, 'bad');
    assert.match(by.shared!.detail!, /one credential for every user/);
    assert.equal(by.headers?.outcome, 'bad');
    assert.equal(by.envshared?.outcome, 'bad');
    assert.match(by.envshared!.observed!, /DB_PASSWORD/);
    assert.equal(by.plain?.outcome, 'info');
    assert.equal(by.files?.outcome, 'info');
    assert.equal(items.length, 8);
  });
});

describe('BND-02 static: TLS verification', () => {
  it('positive control: https everywhere and no switch → ok only', () => {
    const items = staticTlsEvidence(ctxFor({ configPath: writeConfig(cleanConfig()) }));
    assert.ok(items.length >= 2);
    assert.equal(statusOf(items), 'pass', JSON.stringify(items));
  });

  it('switches, a plain-http remote upstream and a TLS-off child env are bad; loopback http is info', () => {
    const raw = cleanConfig();
    Object.assign(raw.upstreams as Record<string, unknown>, {
      remote: { transport: 'streamable-http', url: 'http://10.1.2.3:3000/mcp' },
      local: { transport: 'streamable-http', url: 'http://127.0.0.1:3000/mcp' },
      child: {
        transport: 'stdio',
        command: 'node',
        args: ['server.js', '--insecure', '--tls-verify=false'],
        env: { NODE_TLS_REJECT_UNAUTHORIZED: { value: '0' } },
      },
    });
    (raw.server as Record<string, unknown>).allowedOrigins = ['http://agent.internal.example'];
    const items = staticTlsEvidence(ctxFor({ configPath: writeConfig(raw) }));
    const bad = items
      .filter((i) => i.outcome === 'bad')
      .map((i) => [i.location?.path, i.observed])
      .sort();
    assert.deepEqual(bad, [
      ['upstreams.child.args.1', '--insecure'],
      ['upstreams.child.args.2', '--tls-verify: false'],
      ['upstreams.child.env.NODE_TLS_REJECT_UNAUTHORIZED', 'NODE_TLS_REJECT_UNAUTHORIZED=0'],
      ['upstreams.remote.url', 'http://10.1.2.3:3000'],
    ]);
    assert.equal(items.find((i) => i.location?.path === 'upstreams.local.url')?.outcome, 'info');
    assert.ok(
      !items.some((i) => i.location?.path?.startsWith('server.allowedOrigins')),
      'allowed origins are callers, not connections',
    );
  });

  it('--command: a TLS switch on the line or in the inherited environment is bad', () => {
    const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    try {
      delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      assert.deepEqual(outcomes(staticTlsEvidence(ctxFor({ command: 'node server.js --port 3000' }))), ['ok']);
      const line = staticTlsEvidence(ctxFor({ command: 'NODE_TLS_REJECT_UNAUTHORIZED=0 node server.js' }));
      assert.deepEqual(
        line.map((i) => [i.outcome, i.observed]),
        [['bad', 'NODE_TLS_REJECT_UNAUTHORIZED=0']],
      );
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
      const env = staticTlsEvidence(ctxFor({ command: 'node server.js' }));
      assert.deepEqual(
        env.map((i) => [i.outcome, i.location?.file]),
        [['bad', 'environment']],
      );
    } finally {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
    }
  });
});

/** Runs staticTransportEvidence for `--command` in a fresh Node process with exactly this environment. */
function transportInChild(env: Record<string, string>): Promise<EvidenceItem[]> {
  const dir = tempDir('behalf-review-child-');
  const script = join(dir, 'probe.mjs');
  const mod = (p: string) => pathToFileURL(fileURLToPath(new URL(p, import.meta.url))).href;
  writeFileSync(
    script,
    [
      `import { ReviewContext } from ${JSON.stringify(mod('../src/review/context.js'))};`,
      `import { staticTransportEvidence } from ${JSON.stringify(mod('../src/review/static/transport.js'))};`,
      'const ctx = new ReviewContext({ transport: "streamable", command: "node server.js" });',
      'process.stdout.write(JSON.stringify(staticTransportEvidence(ctx)));',
    ].join('\n'),
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script], { env, encoding: 'utf8' }, (err, stdout) =>
      err ? reject(err) : resolve(JSON.parse(stdout) as EvidenceItem[]),
    );
  });
}

describe('BND-12 static: what a --command child inherits', () => {
  it('a secret-looking variable in this process is bad, named but never shown; a clean environment is ok', async () => {
    const secret = githubToken();
    const dirty = await transportInChild({
      PATH: process.env.PATH ?? '/usr/bin',
      MY_SERVICE_TOKEN: secret,
      HARMLESS: 'hello',
      SHAPED: `key ${awsKeyId()}`,
    });
    const env = byProbe(dirty, /^environment the --command child would inherit$/)[0]!;
    assert.equal(env.outcome, 'bad');
    assert.match(env.observed!, /2 variable\(s\) look like credentials: MY_SERVICE_TOKEN, SHAPED/);
    assertNoSecret(dirty, [secret]);
    const clean = await transportInChild({
      PATH: process.env.PATH ?? '/usr/bin',
      HOME: '/home/someone',
      LANG: 'C.UTF-8',
    });
    assert.equal(byProbe(clean, /^environment the --command child would inherit$/)[0]?.outcome, 'ok');
    assert.deepEqual(
      byProbe(clean, /^literal secrets on the --command line$/).map((i) => i.outcome),
      ['ok'],
    );
  });

  // Node marks inherited descriptors up to the first gap above 15 close-on-exec at start (libuv), so the pipe goes to fd 20.
  it('a descriptor without close-on-exec is bad (a real inherited pipe at fd 20)', async () => {
    const dir = tempDir('behalf-review-fd-');
    const script = join(dir, 'probe.mjs');
    const mod = pathToFileURL(fileURLToPath(new URL('../src/review/static/transport.js', import.meta.url))).href;
    writeFileSync(
      script,
      `import { openDescriptors } from ${JSON.stringify(mod)};\nprocess.stdout.write(JSON.stringify(openDescriptors()));`,
    );
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'ignore', ...Array<'ignore'>(17).fill('ignore'), 'pipe'];
    const child = spawn(process.execPath, [script], { stdio });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((r) => child.on('close', r));
    const fds = JSON.parse(out) as { fd: number; cloexec: boolean; target: string }[];
    const fd20 = fds.find((f) => f.fd === 20);
    assert.ok(fd20, 'fd 20 is listed');
    assert.equal(fd20.cloexec, false);
    const items = inheritanceEvidence({ env: {}, fds, uid: 1000 });
    const fdItem = byProbe(items, /open descriptors/)[0]!;
    assert.equal(fdItem.outcome, 'bad');
    assert.match(fdItem.observed!, /fd 20 \((?:socket|pipe)\)/);
  });

  it('positive controls and root: close-on-exec descriptors and an unprivileged user are ok, uid 0 is bad', () => {
    const ok = inheritanceEvidence({
      env: { PATH: '/usr/bin', PWD: '/home/x', XDG_SESSION_ID: '3' },
      fds: [{ fd: 3, target: 'anon_inode:[eventpoll]', cloexec: true }],
      uid: 1000,
    });
    assert.deepEqual(outcomes(ok), ['ok', 'ok', 'ok']);
    const root = inheritanceEvidence({ env: {}, fds: [], uid: 0 });
    assert.equal(root[2]!.outcome, 'bad');
    assert.match(root[2]!.detail!, /would run as root/);
  });

  it('a literal secret on the command line is bad, by word, never by value', () => {
    const key = `sk-${alnum(40)}`;
    const line = `node server.js --api-key "${key}" --port 3000`;
    const ctx = ctxFor({ command: line });
    const items = commandLineEvidence(line, ctx);
    assert.deepEqual(
      items.map((i) => [i.outcome, i.location?.path]),
      [['bad', 'word 3']],
    );
    assertNoSecret(items, [key]);
    // The pack copies the command line through the redactor: the secret found here is blanked there.
    assert.ok(!ctx.redactor.text(line).includes(key));
    assert.match(ctx.redactor.text(line), /--api-key "\[redacted:[0-9a-f]{12}\]" --port 3000/);
    assert.deepEqual(outcomes(commandLineEvidence('node server.js --port 3000 --name my-server')), ['ok']);
    assert.deepEqual(splitCommand(`a 'b c' "d\\"e" f\\ g`), ['a', 'b c', 'd"e', 'f g']);
  });

  it('config stdio upstreams: references ok, secrets in envAllow bad, folder and OS user reported', () => {
    const raw = cleanConfig();
    Object.assign(raw.upstreams as Record<string, unknown>, {
      tools: {
        transport: 'stdio',
        command: 'node',
        cwd: '/srv/tools/{user}',
        envAllow: ['PATH', 'AWS_SECRET_ACCESS_KEY'],
        env: { API_TOKEN: 'env:TOOLS_TOKEN', LOG_LEVEL: { value: 'debug' } },
        perUser: { uid: 1001, gid: 1001 },
      },
    });
    const items = staticTransportEvidence(ctxFor({ configPath: writeConfig(raw) }));
    const rows = items.map((i) => [i.outcome, i.location?.path]);
    assert.deepEqual(rows, [
      ['ok', 'upstreams.tools.env'],
      ['info', 'upstreams.tools.env'],
      ['bad', 'upstreams.tools.envAllow'],
      ['info', 'upstreams.tools.cwd'],
      ['info', 'upstreams.tools.perUser'],
    ]);
    assert.match(items[2]!.detail!, /AWS_SECRET_ACCESS_KEY/);
    assert.equal(items[4]!.observed, 'uid 1001, gid 1001');
  });
});

describe('BND-10 repository scan', () => {
  /** Harmless look-alikes that must never be reported. */
  function harmless(dir: string): void {
    mkdirSync(join(dir, 'src'), { recursive: true });
    writeFileSync(
      join(dir, 'src', 'ids.ts'),
      [
        `export const checksum = "sha256:${sha256('x')}";`,
        `export const requestId = "${randomUUID()}";`,
        `export const commit = "${sha256('c').slice(0, 40)}";`,
        `const apiKeyHeader = "x-api-key";`,
        `const token = process.env.SERVICE_TOKEN;`,
        `const pattern = "^[A-Za-z0-9_-]{20,64}$";`,
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'package-lock.json'),
      JSON.stringify(
        {
          packages: {
            'node_modules/x': {
              resolved: 'https://registry.npmjs.org/x/-/x-1.0.0.tgz',
              integrity: `sha512-${randomBytes(64).toString('base64')}`,
            },
          },
        },
        null,
        2,
      ),
    );
    writeFileSync(
      join(dir, 'config.yaml'),
      `integrity: sha512-${randomBytes(48).toString('base64')}\nfingerprint256: "${Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':')}"\ndatabase: postgres://app:\${DB_PASSWORD}@db/app\n`,
    );
  }

  function dirtyRepo() {
    const dir = tempDir('behalf-review-repo-');
    harmless(dir);
    const secrets = {
      aws: awsKeyId(),
      pem: pemKey(),
      entropy: randomKey(),
      named: `s3cr3t${alnum(12)}`,
      accepted: awsKeyId(),
      fileAccepted: awsKeyId(),
      hidden: awsKeyId(),
    };
    writeFileSync(
      join(dir, 'src', 'aws.ts'),
      `// uploads\nconst region = "eu-west-1";\nconst awsAccessKeyId = "${secrets.aws}";\n`,
    );
    mkdirSync(join(dir, 'deploy'));
    writeFileSync(join(dir, 'deploy', 'server.key'), secrets.pem);
    writeFileSync(join(dir, 'deploy', 'app.env'), `LOG_LEVEL=debug\nexport BLOB=${secrets.entropy}\n`);
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ name: 'app', dbPassword: secrets.named }, null, 2));
    mkdirSync(join(dir, 'test'));
    writeFileSync(
      join(dir, 'test', 'fixture.ts'),
      `export const FAKE = "${secrets.accepted}";\nexport const OTHER = "${secrets.fileAccepted}";\n`,
    );
    // Never read: skipped folders, binaries, big files.
    for (const skip of ['node_modules/pkg', '.git', 'dist']) {
      mkdirSync(join(dir, skip), { recursive: true });
      writeFileSync(join(dir, skip, 'leak.js'), `const k = "${secrets.hidden}";`);
    }
    writeFileSync(join(dir, 'image.bin'), Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(secrets.hidden)]));
    writeFileSync(join(dir, 'big.log'), `${'a'.repeat(1024 * 1024)}\n${secrets.hidden}\n`);
    return { dir, secrets };
  }

  it('finds known formats and high-entropy assignments, skips what it must, honours acceptances from the profile and the repo', async () => {
    const { dir, secrets } = dirtyRepo();
    const accepted = findingFingerprint('test/fixture.ts', secrets.accepted);
    writeFileSync(
      join(dir, ACCEPT_FILE),
      stringify([
        {
          fingerprint: findingFingerprint('test/fixture.ts', secrets.fileAccepted),
          reason: 'revoked test key kept as a fixture',
        },
      ]),
    );
    const ctx = ctxFor({ repoDir: dir }, [{ fingerprint: accepted, reason: 'an inert fixture key' }]);
    const out = await bnd10(ctx);
    const findings = out.evidence
      .filter((e) => e.fingerprint)
      .map((e) => [e.outcome, `${e.location?.file}:${e.location?.line}`, e.observed])
      .sort();
    assert.deepEqual(findings, [
      ['bad', 'deploy/app.env:2', 'a high-entropy string assigned to BLOB'],
      ['bad', 'deploy/server.key:1', 'a PEM private key'],
      ['bad', 'settings.json:3', 'a literal value assigned to dbPassword, named like a secret'],
      ['bad', 'src/aws.ts:3', 'an AWS access key id'],
      ['info', 'test/fixture.ts:1', 'an AWS access key id'],
      ['info', 'test/fixture.ts:2', 'an AWS access key id'],
    ]);
    for (const e of out.evidence.filter((x) => x.fingerprint)) assert.match(e.fingerprint!, /^sha256:[0-9a-f]{16}$/);
    const aws = out.evidence.find((e) => e.location?.file === 'src/aws.ts')!;
    assert.equal(aws.fingerprint, `sha256:${sha256(`src/aws.ts:${secrets.aws}`).slice(0, 16)}`);
    const fixture = out.evidence.filter((e) => e.location?.file === 'test/fixture.ts');
    assert.deepEqual(
      fixture.map((e) => e.accepted?.reason),
      ['an inert fixture key', 'revoked test key kept as a fixture'],
    );
    assert.match(fixture[1]!.detail!, new RegExp(ACCEPT_FILE.replace('.', '\\.')));
    assert.equal(out.status ?? statusOf(out.evidence), 'fail');
    assert.match(out.finding, /4 credential\(s\) in the repository/);
    const summary = out.evidence.find((e) => e.probe === 'repository scan for embedded credentials')!;
    assert.match(summary.observed!, /skipped: 1 large, 1 binary/);
    assertNoSecret(out, [
      ...Object.values(secrets).filter((s) => !s.startsWith('-----')),
      ...secrets.pem.split('\n').filter((l) => l.length > 20),
    ]);
  });

  it('positive control: a repo of harmless look-alikes passes; accepting every finding passes too', async () => {
    const clean = tempDir('behalf-review-clean-');
    harmless(clean);
    const out = await bnd10(ctxFor({ repoDir: clean }));
    assert.equal(out.status ?? statusOf(out.evidence), 'pass', JSON.stringify(out.evidence, null, 1));
    assert.equal(out.evidence.filter((e) => e.fingerprint).length, 0);

    const { dir } = dirtyRepo();
    const first = await bnd10(ctxFor({ repoDir: dir }));
    const all = first.evidence
      .filter((e) => e.fingerprint)
      .map((e) => ({ fingerprint: e.fingerprint!, reason: 'reviewed' }));
    assert.equal(all.length, 6);
    const acceptedAll = await bnd10(ctxFor({ repoDir: dir }, all));
    assert.equal(acceptedAll.status ?? statusOf(acceptedAll.evidence), 'pass');
    assert.ok(
      acceptedAll.evidence
        .filter((e) => e.fingerprint)
        .every((e) => e.outcome === 'info' && e.accepted?.reason === 'reviewed'),
    );
  });

  it('a missing --repo folder is not assessed', async () => {
    const out = await bnd10(ctxFor({ repoDir: join(tempDir(), 'nope') }));
    assert.equal(out.status ?? statusOf(out.evidence), 'not-assessed');
  });
});
