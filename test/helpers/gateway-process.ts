/**
 * A gateway as its own process (`behalf gateway --config`), as an operator
 * runs it: the dev IdP in this process, the demo CRM as a stdio upstream,
 * the audit trail in a file. `root` is a built tree (`dist/`), so the same
 * helper drives this checkout or an older one for before/after figures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startDevIdp, type DevIdp } from '../../demo/idp/index.js';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import { DEMO_USERS, userClaims } from '../../demo/quickstart/users.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { postJson, rawRequest, type RawResponse } from './raw-http.js';
import { messageOf } from './log-lines.js';

/** This checkout's built tree. */
export const THIS_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PASSWORD = 'process-test';

export interface GatewaySetup {
  root: string;
  idp: DevIdp;
  apiKey: string;
  config: string;
  auditPath: string;
}

/**
 * Writes a config for `root`'s gateway; `audit` adds keys to the audit section (only keys that root's schema knows);
 * `sections` replaces or adds top-level sections (another `crm` upstream, a policy, `operations`).
 */
export async function gatewaySetup(
  root: string,
  dir: string,
  audit: Record<string, unknown> = {},
  sections: Record<string, unknown> = {},
): Promise<GatewaySetup> {
  const idp = await startDevIdp({
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: PASSWORD, claims: userClaims(u) })),
    clients: [{ clientId: 'agent', clientSecret: 'process-secret', grantTypes: ['password'], scope: 'mcp:tools' }],
  });
  const apiKey = generateApiKey();
  const auditPath = join(dir, 'audit.db');
  const config = join(dir, 'gateway.yaml');
  writeFileSync(
    config,
    stringify({
      server: { host: '127.0.0.1', port: 0 },
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: hashApiKey(apiKey) }], oauthClientIds: ['agent'] }],
      userAuth: {
        mode: 'dual',
        issuers: [{ issuer: idp.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] }],
      },
      upstreams: { crm: { transport: 'stdio', command: process.execPath, args: [join(root, 'demo/crm/stdio.js')] } },
      policy: { rules: DEMO_POLICY },
      audit: { sqlitePath: auditPath, ...audit },
      ...sections,
    }),
  );
  return { root, idp, apiKey, config, auditPath };
}

export interface GatewayProcess {
  child: ChildProcess;
  /** The crm route's URL. */
  url: string;
  origin: string;
  /** Every line the gateway wrote to stderr so far. */
  log: string[];
  /** SIGINT, then waits for the exit. */
  stop(): Promise<void>;
}

/** `args` go after `--config FILE` (e.g. `--instance-id`). */
export async function startGatewayProcess(s: GatewaySetup, args: string[] = []): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [join(s.root, 'src/cli/main.js'), 'gateway', '--config', s.config, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log: string[] = [];
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (raw) => {
      const line = messageOf(raw);
      log.push(line);
      const m = /^behalf gateway: crm at (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`gateway exited before listening:\n${log.join('\n')}`)));
  });
  return {
    child,
    url,
    origin: new URL(url).origin,
    log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

/** alice's headers for the route: the agent's API key and a fresh token of hers. */
export async function aliceHeaders(s: GatewaySetup, resource: string): Promise<Record<string, string>> {
  const { accessToken } = await s.idp.passwordToken({
    clientId: 'agent',
    clientSecret: 'process-secret',
    username: 'alice',
    password: PASSWORD,
    resource,
  });
  return { 'x-api-key': s.apiKey, authorization: `Bearer ${accessToken}` };
}

let id = 1;
/** One of alice's calls on her session, timed. */
export async function timedCall(
  url: string,
  headers: Record<string, string>,
  session: string,
): Promise<{ ms: number; r: RawResponse }> {
  const started = performance.now();
  const r = await postJson(
    url,
    headers,
    {
      jsonrpc: '2.0',
      id: id++,
      method: 'tools/call',
      params: { name: 'get_customer', arguments: { customer_id: 'c-100' } },
    },
    session,
  );
  return { ms: performance.now() - started, r };
}

/** A GET of an ops endpoint, timed. */
export async function timedGet(url: string): Promise<{ ms: number; r: RawResponse }> {
  const started = performance.now();
  const r = await rawRequest(url, { timeoutMs: 30_000 });
  return { ms: performance.now() - started, r };
}

/**
 * An outside process holding the database's write lock
 * (helpers/sqlite-locker.ts) until `ms` pass or release() is called;
 * `released` resolves when it has let go.
 */
export async function holdWriteLock(
  db: string,
  ms: number,
): Promise<{ release(): Promise<void>; released: Promise<void> }> {
  const child = spawn(process.execPath, [join(THIS_ROOT, 'test/helpers/sqlite-locker.js'), db, String(ms)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const lines = createInterface({ input: child.stdout! });
  const released = new Promise<void>((r) => {
    lines.on('line', (l) => l === 'released' && r());
    void exited.then(() => r());
  });
  await new Promise<void>((resolve, reject) => {
    lines.once('line', () => resolve());
    void exited.then(() => reject(new Error('the locker exited before taking the lock')));
  });
  return {
    released,
    async release() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `behalf audit verify --db PATH` of `root`, as an operator runs it. */
export function verifyAudit(root: string, db: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(root, 'src/cli/main.js'), 'audit', 'verify', '--db', db], {
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
