import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { stringify } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import type { AuditRecord } from '../src/audit/event.js';
import { loadConfigFile } from '../src/config/load.js';
import { BehalfError } from '../src/errors.js';
import { startGateway, type Gateway } from '../src/gateway/server.js';
import { generateApiKey, hashApiKey } from '../src/identity/api-keys.js';
import { DAY_MS } from '../src/keys/lifecycle.js';
import { KeyStoreSigner } from '../src/keys/signer.js';
import { CRM_STDIO, startFixture, type Fixture } from './helpers/fixture.js';
import { eventually, openSession, postRpc, sessionHeaders } from './helpers/transport-clients.js';
import { tempDir } from './helpers/tmp.js';

/**
 * Credential management (docs/architecture.md §1 question 5, review check BND-10): managed
 * API keys and gateway signing keys with ids and validity windows, created,
 * listed, rotated and revoked with the real CLI against a real running
 * gateway, every change in the audit trail; and configuration files holding a
 * literal secret refused.
 */

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/gateway.yaml', import.meta.url));
const run = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real CLI, asynchronously: the gateway under test runs in this process and must keep serving meanwhile. */
async function behalf(...args: string[]): Promise<CliResult> {
  try {
    const r = await run(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function keysOk(...args: string[]): Promise<Record<string, unknown>> {
  const r = await behalf('keys', ...args);
  assert.equal(r.code, 0, `behalf keys ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const day = (offsetDays: number) => new Date(Date.now() + offsetDays * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('managed keys: the CLI and a running gateway', () => {
  let fx: Fixture;
  let gw: Gateway;
  let dir: string;
  let cfg: string;
  let db: string;
  let url: string;
  let alice: string;
  const logs: string[] = [];
  const staticKey = generateApiKey();
  const expiredStatic = generateApiKey();
  const futureStatic = generateApiKey();
  /** Every API key handed out in this suite: none may appear in any output, file or audit record. */
  const secrets: string[] = [staticKey, expiredStatic, futureStatic];
  let keyA: string;
  let keyB: string;
  let keyC: string;

  /** One authenticated tools/call on an open session; the status and the customer's owner. */
  async function call(key: string, sessionId: string): Promise<{ status: number; owner?: string }> {
    const r = await postRpc(
      url,
      sessionHeaders({ 'x-api-key': key, authorization: `Bearer ${alice}` }, sessionId),
      {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'get_customer', arguments: { customer_id: 'c-100' } },
      },
      { accept: 'application/json' },
    );
    const body = r.body as { result?: { content?: { text: string }[] } };
    const text = body?.result?.content?.[0]?.text;
    return { status: r.status, owner: text ? (JSON.parse(text) as { owner?: string }).owner : undefined };
  }

  /** initialize with a key: 200, or the 401 of a refused credential. */
  async function initStatus(key: string): Promise<number> {
    const r = await postRpc(
      url,
      { 'x-api-key': key, authorization: `Bearer ${alice}` },
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } },
      },
      { accept: 'application/json' },
    );
    const sid = r.headers.get('mcp-session-id');
    if (sid)
      await fetch(url, {
        method: 'DELETE',
        headers: { 'x-api-key': key, authorization: `Bearer ${alice}`, 'mcp-session-id': sid },
      });
    return r.status;
  }

  async function lastAuthFailure(): Promise<string> {
    const [last] = await gw.runtime.audit.query({ kind: 'auth-failure', limit: 1 });
    return last?.reason ?? '';
  }

  before(async () => {
    fx = await startFixture({ noGateway: true });
    dir = tempDir('behalf-keys-');
    cfg = join(dir, 'gateway.yaml');
    db = join(dir, 'audit.db');
    writeFileSync(
      cfg,
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        clientAuth: { methods: ['api-key'] },
        clients: [
          {
            id: 'agent',
            apiKeys: [
              // The static form carries the same lifecycle: this one is over the max age and expires in 5 days.
              { id: 'k-static', hash: hashApiKey(staticKey), createdAt: day(-200), notAfter: day(5) },
              { id: 'k-static-expired', hash: hashApiKey(expiredStatic), notAfter: '2020-01-01' },
              { id: 'k-static-future', hash: hashApiKey(futureStatic), notBefore: '2999-01-01' },
            ],
            oauthClientIds: ['agent'],
          },
          { id: 'other-agent', oauthClientIds: ['other-agent'] },
        ],
        userAuth: {
          mode: 'dual',
          issuers: [{ issuer: fx.idp.issuer, algorithms: ['ES256', 'RS256'], userClaims: ['role', 'customers'] }],
        },
        upstreams: { crm: CRM_STDIO },
        policy: { rules: DEMO_POLICY },
        audit: { sqlitePath: 'audit.db' },
        keys: { file: 'keys.json', maxAgeDays: 90, warnBeforeDays: 14 },
      }),
    );
    const created = await keysOk('create', '--config', cfg, '--client', 'agent', '--id', 'k-a');
    keyA = String(created.key);
    secrets.push(keyA);
    gw = await startGateway(loadConfigFile(cfg), { log: (l) => logs.push(l), verifier: { jwksCooldownMs: 0 } });
    url = gw.urlFor('crm');
    alice = await fx.userToken('alice', { resource: url });
  });
  after(async () => {
    await gw?.close();
    await fx?.close();
  });

  it('create prints the key once; the store and list hold only its id, dates and hash', async () => {
    assert.match(keyA, /^bhk_[A-Za-z0-9_-]{43}$/);
    const store = readFileSync(join(dir, 'keys.json'), 'utf8');
    assert.ok(store.includes(hashApiKey(keyA)), 'the store keeps the hash');
    assert.ok(!store.includes(keyA), 'never the key');
    const list = await behalf('keys', 'list', '--config', cfg);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /^ID\s+KIND\s+CLIENT\s+SOURCE\s+CREATED\s+NOT-BEFORE\s+NOT-AFTER\s+STATUS\s+AGE\s+NOTE$/m,
    );
    assert.match(list.stdout, /^k-a\s+api-key\s+agent\s+store\s+\S+\s+\S+\s+\S+\s+active\s/m);
    assert.match(list.stdout, /^k-static-expired\s+api-key\s+agent\s+config\s.*\sexpired\s/m);
    assert.match(list.stdout, /^k-static-future\s+api-key\s+agent\s+config\s.*\snot-yet-valid\s/m);
    for (const s of secrets) assert.ok(!list.stdout.includes(s), 'list shows no key');
    assert.ok(!list.stdout.includes('sha256:'), 'nor a hash');
  });

  it('the created key and the static key authenticate (positive control); an unknown key does not', async () => {
    const sid = await openSession(url, { 'x-api-key': keyA, authorization: `Bearer ${alice}` });
    assert.deepEqual(await call(keyA, sid), { status: 200, owner: 'alice' });
    assert.deepEqual(await call(staticKey, sid), { status: 200, owner: 'alice' });
    assert.equal((await call(generateApiKey(), sid)).status, 401);
    assert.match(await lastAuthFailure(), /unknown API key/);
  });

  it('expired and not-yet-valid keys are refused, in the config (static form) and in the key store', async () => {
    assert.equal(await initStatus(expiredStatic), 401);
    assert.match(await lastAuthFailure(), /API key k-static-expired has expired/);
    assert.equal(await initStatus(futureStatic), 401);
    assert.match(await lastAuthFailure(), /API key k-static-future is not valid yet/);

    const future = await keysOk(
      'create',
      '--config',
      cfg,
      '--client',
      'agent',
      '--id',
      'k-future',
      '--not-before',
      day(1),
      '--days',
      '30',
    );
    secrets.push(String(future.key));
    assert.equal(await initStatus(String(future.key)), 401);
    assert.match(await lastAuthFailure(), /API key k-future is not valid yet/);

    const past = await keysOk(
      'create',
      '--config',
      cfg,
      '--client',
      'agent',
      '--id',
      'k-past',
      '--not-before',
      '2020-01-01',
      '--not-after',
      '2020-02-01',
    );
    secrets.push(String(past.key));
    assert.equal(await initStatus(String(past.key)), 401);
    assert.match(await lastAuthFailure(), /API key k-past has expired/);
    assert.equal(await initStatus(keyA), 200, 'control: a valid key of the same client');
  });

  it('rotation with two active keys: zero failed requests across the rotation and the reload', async () => {
    const sid = await openSession(url, { 'x-api-key': keyA, authorization: `Bearer ${alice}` });
    const results: { key: 'old' | 'new'; status: number; owner?: string }[] = [];
    let rotated = false;
    let settledAt = Infinity;
    const loop = (async () => {
      // Requests alternate between the keys and keep going until well after the gateway saw the new store.
      while (Date.now() < settledAt) {
        const r = await call(keyA, sid);
        results.push({ key: 'old', ...r });
        if (rotated) results.push({ key: 'new', ...(await call(keyB, sid)) });
      }
    })();
    const logMark = logs.length;
    const out = await keysOk('rotate', '--config', cfg, '--id', 'k-a', '--new-id', 'k-b', '--overlap-days', '1');
    keyB = String(out.key);
    secrets.push(keyB);
    rotated = true;
    assert.equal(out.rotated, 'k-a');
    assert.equal(out.replaces, 'k-a');
    assert.ok(
      Math.abs(Date.parse(String(out.oldNotAfter)) - (Date.now() + DAY_MS)) < 60_000,
      'the old key now expires after the overlap',
    );
    // The watcher's reload is recorded: wait for it, then keep both keys busy a little longer.
    await eventually(
      () => logs.slice(logMark).some((l) => l.startsWith('key store reloaded')),
      5000,
      'the gateway reloads the key store',
    );
    settledAt = Date.now() + 300;
    await loop;

    const failed = results.filter((r) => r.status !== 200 || r.owner !== 'alice');
    assert.deepEqual(failed, [], 'no request failed while its key was valid');
    assert.ok(results.filter((r) => r.key === 'old').length > 5, 'the old key was used throughout');
    assert.ok(results.filter((r) => r.key === 'new').length > 5, 'the new key was used as soon as it existed');

    const list = await behalf('keys', 'list', '--config', cfg, '--json');
    const rows = JSON.parse(list.stdout) as { id: string; status: string; replacedBy?: string; replaces?: string }[];
    assert.deepEqual(
      rows.filter((r) => r.id === 'k-a' || r.id === 'k-b').map((r) => [r.id, r.status, r.replacedBy ?? r.replaces]),
      [
        ['k-a', 'active', 'k-b'],
        ['k-b', 'active', 'k-a'],
      ],
    );
  });

  it('a revoked key is refused on the very next request, while the other key still works', async () => {
    const sid = await openSession(url, { 'x-api-key': keyA, authorization: `Bearer ${alice}` });
    assert.deepEqual(await call(keyA, sid), { status: 200, owner: 'alice' }, 'control: the key works before');
    const out = await keysOk('revoke', '--config', cfg, '--id', 'k-a', '--reason', 'test: leaked');
    assert.equal(out.revoked, 'k-a');
    // No wait: the gateway checks the store before using it.
    assert.equal((await call(keyA, sid)).status, 401);
    assert.match(await lastAuthFailure(), /API key k-a is revoked/);
    assert.deepEqual(await call(keyB, sid), { status: 200, owner: 'alice' });
    await eventually(
      () => logs.some((l) => /key k-a .* is revoked: refused from now on/.test(l)),
      5000,
      'the gateway logs the revocation',
    );
  });

  it('rotate with --overlap-days 0 cuts over at once: the old key expires, the new one works', async () => {
    const out = await keysOk('rotate', '--config', cfg, '--id', 'k-b', '--new-id', 'k-c', '--overlap-days', '0');
    keyC = String(out.key);
    secrets.push(keyC);
    assert.equal(await initStatus(keyB), 401);
    assert.match(await lastAuthFailure(), /API key k-b has expired/);
    assert.equal(await initStatus(keyC), 200);
  });

  it('the max-age policy warns in list and in the gateway log', async () => {
    const short = await keysOk('create', '--config', cfg, '--client', 'agent', '--id', 'k-short', '--days', '3');
    secrets.push(String(short.key));
    const list = await behalf('keys', 'list', '--config', cfg);
    assert.match(list.stdout, /^k-static\s.*WARN expires in 5d .*older than the maximum age of 90 days \(200d\)/m);
    assert.match(list.stdout, /^k-short\s.*WARN expires in [23]d/m);
    assert.doesNotMatch(list.stdout, /^k-c\s.*WARN/m, 'a fresh key with the default expiry has no warning');
    assert.ok(
      logs.some((l) =>
        /^WARNING: key k-static \(client agent\) expires in 5d .*older than the maximum age of 90 days/.test(l),
      ),
      'at start',
    );
    await eventually(
      () => logs.some((l) => /^WARNING: key k-short \(client agent\) expires in/.test(l)),
      5000,
      'after the reload',
    );
  });

  it('a broken key store is refused on reload; the previous keys keep serving', async () => {
    const path = join(dir, 'keys.json');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, '{ "version": 1, "keys": [ { "id": "x" ');
    assert.equal(await initStatus(keyC), 200);
    await eventually(
      () => logs.some((l) => l.startsWith('key store reload rejected')),
      5000,
      'the rejection is logged',
    );
    writeFileSync(path, good);
    assert.equal(await initStatus(keyC), 200);
  });

  it('every key event is in the audit trail, without a secret; behalf audit verify passes', async () => {
    const records = await gw.runtime.audit.query({ kind: 'key', limit: 1000 });
    const cli = records
      .filter((r) => ['created', 'rotated', 'revoked'].includes(r.outcome ?? ''))
      .map((r) => `${r.outcome} ${r.credentialId}`);
    for (const e of [
      'created k-a',
      'created k-future',
      'created k-past',
      'rotated k-a',
      'created k-b',
      'revoked k-a',
      'rotated k-b',
      'created k-c',
      'created k-short',
    ]) {
      assert.ok(cli.includes(e), `the trail records "${e}"`);
    }
    const rotation = records.find((r) => r.outcome === 'rotated' && r.credentialId === 'k-a')!;
    assert.match(
      rotation.reason!,
      /api-key of client agent; from the key store; created \S+; valid \S+ → \S+; replaced by k-b; by \S+ with behalf keys rotate/,
    );
    assert.equal(rotation.clientId, 'agent');
    assert.match(records.find((r) => r.outcome === 'revoked')!.reason!, /reason: test: leaked/);
    // The gateway's own view: the keys in force at start, and every change it saw.
    const gateway = (r: AuditRecord) => r.reason?.split(':')[0];
    assert.ok(
      records.some((r) => gateway(r) === 'gateway start' && r.credentialId === 'k-a' && r.outcome === 'key active'),
    );
    assert.ok(
      records.some(
        (r) => gateway(r) === 'gateway start' && r.credentialId === 'k-static' && r.outcome === 'key warning',
      ),
    );
    assert.ok(
      records.some(
        (r) => gateway(r) === 'key store reloaded' && r.credentialId === 'k-b' && r.outcome === 'key active',
      ),
    );
    assert.ok(
      records.some(
        (r) => gateway(r) === 'key store reloaded' && r.credentialId === 'k-a' && r.outcome === 'key revoked',
      ),
    );
    assert.ok(records.some((r) => r.outcome === 'key store rejected'));
    const all = JSON.stringify(records);
    for (const s of secrets) assert.ok(!all.includes(s), 'no key in the trail');
    assert.ok(!all.includes('sha256:'), 'no key hash in the trail');

    const verify = await behalf('audit', 'verify', '--db', db);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^ok: \d+ records/);
  });

  it('refusals: unknown ids, static keys, double revocation, a client the config does not declare', async () => {
    const cases: [string[], RegExp][] = [
      [['revoke', '--config', cfg, '--id', 'nope'], /no key nope in/],
      [
        ['revoke', '--config', cfg, '--id', 'k-static'],
        /written in the gateway config \(static form\).*remove it from clients\[\]\.apiKeys/,
      ],
      [['revoke', '--config', cfg, '--id', 'k-a'], /already revoked/],
      [['rotate', '--config', cfg, '--id', 'k-a'], /revoked: create a new key instead/],
      [['create', '--config', cfg, '--client', 'stranger'], /declares no client stranger/],
      [['create', '--config', cfg, '--client', 'agent', '--id', 'k-b'], /a key with id k-b already exists/],
      [['create', '--config', cfg], /needs --client ID .* or --signing/],
    ];
    const results = await Promise.all(cases.map(([args]) => behalf('keys', ...args)));
    cases.forEach(([args, re], i) => {
      assert.equal(results[i]!.code, 2, args.join(' '));
      assert.match(results[i]!.stderr, re);
    });
  });

  describe('gateway signing keys', () => {
    it('create --signing: a 0600 private JWK next to the store, the public JWKS served, tokens verify with it', async () => {
      const sig1 = await keysOk('create', '--config', cfg, '--signing', '--id', 'sig-1');
      assert.equal(sig1.alg, 'ES256');
      assert.equal(sig1.privateKey, 'file:sig-1.private.jwk');
      assert.equal(statSync(join(dir, 'sig-1.private.jwk')).mode & 0o777, 0o600);
      const store = readFileSync(join(dir, 'keys.json'), 'utf8');
      const priv = JSON.parse(readFileSync(join(dir, 'sig-1.private.jwk'), 'utf8')) as { d: string };
      assert.ok(!store.includes(priv.d), 'the store holds no private member');

      const res = await fetch(`${gw.baseUrl}/.well-known/jwks.json`);
      assert.equal(res.status, 200);
      const jwks = (await res.json()) as { keys: Record<string, unknown>[] };
      assert.deepEqual(
        jwks.keys.map((k) => k.kid),
        [sig1.kid],
      );
      for (const k of jwks.keys) {
        for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) assert.ok(!(m in k), `no private member ${m}`);
        assert.deepEqual(Object.keys(k).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      }
      assert.equal((await fetch(`${gw.baseUrl}/.well-known/jwks.json`, { method: 'POST' })).status, 405);

      const signed = await gw.runtime.signer!.sign(
        { sub: 'alice', iss: 'https://forged.example' },
        { audience: 'https://crm.internal', lifetimeSeconds: 60 },
      );
      assert.equal(signed.kid, sig1.kid);
      const { payload, protectedHeader } = await jwtVerify(signed.token, createLocalJWKSet(jwks as never), {
        issuer: gw.baseUrl,
        audience: 'https://crm.internal',
        algorithms: ['ES256'],
      });
      assert.equal(payload.sub, 'alice');
      assert.equal(payload.jti, signed.jti);
      assert.equal(payload.exp, signed.expiresAt);
      assert.equal(payload.exp! - payload.iat!, 60);
      assert.deepEqual(protectedHeader, { alg: 'ES256', kid: sig1.kid, typ: 'JWT' });
    });

    it('after rotation both kids verify until the old notAfter; new tokens use the new key', async () => {
      const jwksNow = async () =>
        (await (await fetch(`${gw.baseUrl}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
      const before = await gw.runtime.signer!.sign(
        { sub: 'bob' },
        { audience: 'https://crm.internal', lifetimeSeconds: 300 },
      );
      const out = await keysOk('rotate', '--config', cfg, '--id', 'sig-1', '--new-id', 'sig-2', '--overlap-days', '1');
      const jwks = await jwksNow();
      assert.deepEqual(new Set(jwks.keys.map((k) => k.kid)), new Set([before.kid, out.kid]));
      const afterRotation = await gw.runtime.signer!.sign(
        { sub: 'bob' },
        { audience: 'https://crm.internal', lifetimeSeconds: 300 },
      );
      assert.equal(decodeProtectedHeader(afterRotation.token).kid, out.kid, 'the newest key signs');
      const set = createLocalJWKSet(jwks as never);
      for (const t of [before.token, afterRotation.token]) {
        await jwtVerify(t, set, { issuer: gw.baseUrl, audience: 'https://crm.internal' });
      }
      // Past the old key's notAfter, verifiers no longer meet it: the same keys seen by a signer whose clock is a day and a bit ahead.
      const later = new KeyStoreSigner(
        gw.baseUrl,
        () => gw.runtime.keys!.current.signing,
        () => Date.now() + DAY_MS + 60_000,
      );
      assert.deepEqual(
        later.jwks().keys.map((k) => k.kid),
        [out.kid],
      );
      await assert.rejects(jwtVerify(before.token, createLocalJWKSet(later.jwks() as never)));
    });

    it('a revoked signing key leaves the JWKS at once and its private half is deleted', async () => {
      const out = await keysOk('revoke', '--config', cfg, '--id', 'sig-1');
      assert.equal(out.privateKeyDeleted, 'file:sig-1.private.jwk');
      assert.throws(() => statSync(join(dir, 'sig-1.private.jwk')));
      const jwks = (await (await fetch(`${gw.baseUrl}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      assert.equal(jwks.keys.length, 1);
      const signed = await gw.runtime.signer!.sign({ sub: 'carol' }, { audience: 'a', lifetimeSeconds: 30 });
      assert.equal(signed.kid, jwks.keys[0]!.kid);
    });
  });
});

describe('literal secrets in configuration files are refused', () => {
  const HASH = `sha256:${'ab'.repeat(32)}`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  function base(): Record<string, any> {
    return {
      server: { host: '127.0.0.1', port: 0 },
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', apiKeys: [{ id: '2026-11', hash: HASH }], oauthClientIds: ['agent'] }],
      userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
      upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
      policy: { rules: [{ id: 'r1', effect: 'allow', tools: ['get_customer'], when: 'true' }] },
      audit: { sqlitePath: ':memory:' },
    };
  }
  const write = (raw: unknown) => {
    const file = join(tempDir('behalf-literal-'), 'gateway.yaml');
    writeFileSync(file, stringify(raw));
    return file;
  };
  const SK = `sk-proj-${'Ab1Cd2Ef3Gh4'.repeat(4)}`;
  const PEM =
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----';
  const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OX0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
  const HUNTER = 'hunter2hunter2hunter2hunter2';
  const cases: {
    name: string;
    value: string;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    mutate: (r: Record<string, any>, v: string) => void;
    path: RegExp;
    why: RegExp;
  }[] = [
    {
      name: "an inline sk- key in a stdio child's args",
      value: SK,
      mutate: (r, v) => {
        r.upstreams.crm.args = ['crm.js', '--openai-key', v];
      },
      path: /upstreams\.crm\.args\.2: /,
      why: /sk- form/,
    },
    {
      name: 'a PEM private key as an env literal',
      value: PEM,
      mutate: (r, v) => {
        r.upstreams.crm.env = { TLS_KEY: { value: v } };
      },
      path: /upstreams\.crm\.env\.TLS_KEY\.value: /,
      why: /a PEM private key/,
    },
    {
      name: 'a JWT in a rule',
      value: JWT,
      mutate: (r, v) => {
        r.policy.rules[0].when = `user.sub == "${v}"`;
      },
      path: /policy\.rules\.0\.when: /,
      why: /a JSON Web Token/,
    },
    {
      name: 'clientSecret: hunter2… (a SecretRef field)',
      value: HUNTER,
      mutate: (r, v) => {
        r.upstreams.api = {
          transport: 'streamable-http',
          url: 'http://127.0.0.1:1/mcp',
          downstream: { strategy: 'token-exchange', clientId: 'gw', clientSecret: v },
        };
      },
      path: /upstreams\.api\.downstream\.clientSecret: must be a secret reference/,
      why: /./,
    },
    {
      name: 'clientSecret: hunter2… in an env literal',
      value: HUNTER,
      mutate: (r, v) => {
        r.upstreams.crm.env = { CLIENT_SECRET: { value: v } };
      },
      path: /upstreams\.crm\.env\.CLIENT_SECRET\.value: /,
      why: /a field named like a secret/,
    },
    {
      name: 'a --token=… argument',
      value: 'Xy7pQ2rT9vW4zK8m',
      mutate: (r, v) => {
        r.upstreams.crm.args = [`--token=${v}`];
      },
      path: /upstreams\.crm\.args\.0: /,
      why: /an argument named like a secret/,
    },
    {
      name: 'a database URL with its password',
      value: 'pa55w0rd-db',
      mutate: (r, v) => {
        r.upstreams.crm.env = { DATABASE_URL: { value: `postgres://crm:${v}@db:5432/crm` } };
      },
      path: /upstreams\.crm\.env\.DATABASE_URL\.value: /,
      why: /a URL with an embedded password/,
    },
  ];
  const refused: { file: string; path: RegExp; value: string }[] = [];
  for (const c of cases) {
    it(`refuses ${c.name}: the path and the reason, never the value`, () => {
      const raw = base();
      c.mutate(raw, c.value);
      const file = write(raw);
      assert.throws(
        () => loadConfigFile(file),
        (err: unknown) => {
          assert.ok(err instanceof BehalfError && err.code === 'config_invalid');
          assert.match(err.message, c.path);
          assert.match(err.message, c.why);
          assert.ok(!err.message.includes(c.value), 'the value is not echoed');
          return true;
        },
      );
      refused.push({ file, path: c.path, value: c.value });
    });
  }

  it('`behalf gateway` refuses to start on each of them', async () => {
    assert.equal(refused.length, cases.length);
    const runs = await Promise.all(refused.map((f) => behalf('gateway', '--config', f.file)));
    refused.forEach((f, i) => {
      assert.equal(runs[i]!.code, 1);
      assert.match(runs[i]!.stderr, f.path);
      assert.ok(!(runs[i]!.stderr + runs[i]!.stdout).includes(f.value), 'the value is not echoed');
    });
  });

  it('hashes, fingerprints, ids, URLs, CEL, header names and references pass (controls)', () => {
    const raw = base();
    raw.clients[0].certificates = [
      {
        fingerprint256:
          '0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9',
      },
    ];
    raw.clients[0].apiKeys[0].createdAt = '2026-11-01';
    raw.clientAuth.apiKeyHeader = 'x-api-key';
    raw.upstreams.crm.args = [
      'crm.js',
      '--token-file',
      '/run/secrets/crm-token',
      '--password-env=CRM_PASSWORD',
      '--tool',
      'sk-learn-classification-pipeline-v2',
    ];
    raw.upstreams.crm.env = {
      CRM_TOKEN: 'env:CRM_TOKEN',
      SECRET_BACKEND: { value: 'kubernetes' },
      TOKEN_TTL: { value: '3600' },
      AUTH_URL: { value: 'https://idp.example.com/token' },
    };
    raw.upstreams.docs = {
      transport: 'streamable-http',
      url: 'http://10.0.0.5:3000/mcp',
      headers: { authorization: 'env:DOCS_TOKEN' },
    };
    raw.policy.rules[0].description = 'Bearer tokens from the IdP; Token exchange for downstream calls';
    raw.policy.rules[0].when = 'user.claims.role == "rep" && args.customer_id in user.claims.customers';
    raw.userAuth.issuers[0].userClaims = ['role', 'customers'];
    assert.doesNotThrow(() => loadConfigFile(write(raw)));
  });

  it('examples/gateway.yaml loads', async () => {
    assert.doesNotThrow(() => loadConfigFile(EXAMPLE));
    const r = await behalf('config', 'check', '--config', EXAMPLE, '--shape-only');
    assert.equal(r.code, 0, r.stderr);
    // Its references name a production machine's files and variables: without --shape-only each is reported.
    const here = await behalf('config', 'check', '--config', EXAMPLE);
    assert.equal(here.code, 1);
    assert.match(
      here.stderr,
      /server\.tls\.cert: file:\/etc\/behalf\/tls\.crt: \/etc\/behalf\/tls\.crt does not exist/,
    );
  });

  it('a literal secret in a watched policy file is refused too', () => {
    const raw = base();
    const folder = tempDir('behalf-literal-');
    writeFileSync(
      join(folder, 'policy.yaml'),
      stringify({ rules: [{ id: 'r1', effect: 'allow', tools: ['x'], description: `key ${SK}` }] }),
    );
    raw.policy = { file: 'policy.yaml' };
    const file = join(folder, 'gateway.yaml');
    writeFileSync(file, stringify(raw));
    assert.throws(
      () => loadConfigFile(file),
      (err: unknown) => {
        assert.match(
          (err as Error).message,
          /policy file .*policy\.yaml: rules\.0\.description: looks like a literal secret/,
        );
        assert.ok(!(err as Error).message.includes(SK));
        return true;
      },
    );
  });
});

describe('the static form', () => {
  it('`keys generate` still prints a key and its hash; `keys hash` hashes a key read on stdin', async () => {
    const gen = await keysOk('generate');
    assert.match(String(gen.key), /^bhk_/);
    assert.equal(gen.hash, hashApiKey(String(gen.key)));
    const child = execFile(process.execPath, [MAIN, 'keys', 'hash'], { encoding: 'utf8' });
    child.stdin!.end(`${String(gen.key)}\n`);
    let stdout = '';
    child.stdout!.on('data', (d: string) => {
      stdout += d;
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), { hash: gen.hash });
  });
});

describe('key store file safety', () => {
  it('a store holding a private member or a non-reference private key is refused at start', async () => {
    const folder = tempDir('behalf-store-');
    const cfgFile = join(folder, 'gateway.yaml');
    writeFileSync(
      cfgFile,
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        clientAuth: { methods: ['api-key'] },
        clients: [{ id: 'agent', oauthClientIds: ['agent'] }],
        userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
        upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
        audit: { sqlitePath: ':memory:' },
        keys: { file: 'keys.json' },
      }),
    );
    await keysOk('create', '--store', join(folder, 'keys.json'), '--signing', '--id', 's1');
    const doc = JSON.parse(readFileSync(join(folder, 'keys.json'), 'utf8')) as {
      keys: { publicJwk: Record<string, string>; privateKey: string }[];
    };
    const priv = JSON.parse(readFileSync(join(folder, 's1.private.jwk'), 'utf8')) as { d: string };
    doc.keys[0]!.publicJwk.d = priv.d;
    writeFileSync(join(folder, 'keys.json'), JSON.stringify(doc));
    await assert.rejects(startGateway(loadConfigFile(cfgFile), { log: () => {} }), (err: unknown) => {
      assert.match((err as Error).message, /keys\.0\.publicJwk: Unrecognized key: "d"/);
      assert.ok(!(err as Error).message.includes(priv.d));
      return true;
    });
  });
});

describe('a key change that cannot be recorded leaves nothing behind', () => {
  it('create --signing with an audit trail that cannot be opened: exit 3, no private key file; the same id works once the trail can be opened', async () => {
    const folder = tempDir('behalf-trail-');
    const cfgFile = join(folder, 'gateway.yaml');
    const config = (sqlitePath: string) =>
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        clientAuth: { methods: ['api-key'] },
        clients: [{ id: 'agent', oauthClientIds: ['agent'] }],
        userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
        upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
        audit: { sqlitePath },
        keys: { file: 'keys.json' },
      });
    // A regular file where the trail's folder should be: the trail cannot be created.
    writeFileSync(join(folder, 'blocker'), 'not a folder');
    writeFileSync(cfgFile, config('blocker/audit.db'));
    const refused = await behalf('keys', 'create', '--config', cfgFile, '--signing', '--id', 'sig-a');
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /nothing was changed/);
    assert.equal(existsSync(join(folder, 'sig-a.private.jwk')), false, 'no private key file left behind');
    // Positive control: with a trail that opens, the same id is created.
    writeFileSync(cfgFile, config('audit.db'));
    const made = await keysOk('create', '--config', cfgFile, '--signing', '--id', 'sig-a');
    assert.equal(made.id, 'sig-a');
    assert.equal(existsSync(join(folder, 'sig-a.private.jwk')), true);
  });
});
