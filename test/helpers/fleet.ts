/**
 * A fleet of gateway processes sharing one Redis (through a TCP proxy the
 * test can stop), in front of one demo CRM and trusting one dev IdP and one
 * agent platform (signed user context). Each instance has its own config
 * file, key store and audit trail — nothing shared but Redis and what a load
 * balancer would give them: one public URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { exportJWK, generateKeyPair } from 'jose';
import { stringify } from 'yaml';
import { startDevIdp, type DevIdp } from '../../demo/idp/index.js';
import { DEMO_USERS, userClaims } from '../../demo/quickstart/users.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { REDIS_PORT } from './redis-test.js';
import { lineOf, OWN_ROOT } from './spawned-gateway.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { tempDir } from './tmp.js';
import { messageOf } from './log-lines.js';

export const PUBLIC_URL = 'http://fleet.behalf.test';
export const PLATFORM = 'https://agent-platform.behalf.test';

export interface FleetInstance {
  id: string;
  /** The CRM route at this instance's own address. */
  url: string;
  configPath: string;
  auditPath: string;
  output: string[];
  child: ChildProcess;
}

export interface Fleet {
  instances: FleetInstance[];
  proxy: TcpProxy;
  /** The agent's two API keys, both in every instance's key store. */
  keys: { main: string; spare: string };
  /** The resource every instance serves (the load balancer's URL): a token's and an assertion's audience. */
  resource: string;
  /** A user's token for the fleet's resource (or another route's). */
  tokenFor(user: string, resource?: string): Promise<string>;
  platformKey: { kid: string; key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'] };
  /** The policy file all instances read; only the first watches it (the others reload when the fleet says so). */
  policyPath: string;
  /** Stops the demo CRM and starts a new one on the same port: it has forgotten every upstream session. */
  restartCrm(): Promise<void>;
  /** Resolves once a line matching `re` appears in the instance's output after index `from`. */
  waitForLine(i: FleetInstance, re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  close(): Promise<void>;
}

function storeEntry(id: string, key: string) {
  const now = Date.now();
  return {
    id,
    kind: 'api-key',
    client: 'agent',
    hash: hashApiKey(key),
    createdAt: new Date(now - 60_000).toISOString(),
    notBefore: new Date(now - 60_000).toISOString(),
    notAfter: new Date(now + 30 * 86_400_000).toISOString(),
    status: 'active',
  };
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** An instance's audit rows matching `where` (SQL over audit_events), in order, read from its own file. */
export function auditRows(i: FleetInstance, where: string, ...args: unknown[]): Record<string, unknown>[] {
  const db = new Database(i.auditPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT * FROM audit_events WHERE ${where} ORDER BY seq`).all(...args) as Record<
      string,
      unknown
    >[];
  } finally {
    db.close();
  }
}

export async function startFleet(o: {
  size: number;
  prefix: string;
  policy: Record<string, unknown>;
  /** More upstreams in every instance's config, next to `crm`. */
  upstreams?: Record<string, unknown>;
  /** Every instance's `audit` section instead of its own SQLite file (e.g. one PostgreSQL trail). */
  audit?: Record<string, unknown>;
  /** More environment for every instance (e.g. the URL an `env:` reference in `audit` names). */
  env?: Record<string, string>;
}): Promise<Fleet> {
  const children: ChildProcess[] = [];
  let idp: DevIdp | undefined;
  let proxy: TcpProxy | undefined;
  try {
    const crm = spawn(process.execPath, [join(OWN_ROOT, 'demo/crm/http-main.js'), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(crm);
    const crmUrl = (JSON.parse(await lineOf(crm, /^\{"url"/)) as { url: string }).url;
    idp = await startDevIdp({
      users: DEMO_USERS.map((u) => ({ sub: u.name, password: 'fleet', claims: userClaims(u) })),
      clients: [{ clientId: 'agent', clientSecret: 'fleet-secret', grantTypes: ['password'], scope: 'mcp:tools' }],
      // The fleet's resource is the load balancer's URL, not a loopback one.
      acceptResource: (r) => r.startsWith(`${PUBLIC_URL}/`),
    });
    proxy = await startTcpProxy({ host: '127.0.0.1', port: REDIS_PORT });
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = 'platform-1';
    const shared = tempDir('behalf-fleet-');
    const jwksPath = join(shared, 'platform.jwks.json');
    writeFileSync(jwksPath, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256' }] }));
    const keys = { main: generateApiKey(), spare: generateApiKey() };
    const policyPath = join(shared, 'policy.yaml');
    writeFileSync(policyPath, stringify(o.policy));
    const resource = `${PUBLIC_URL}/mcp/crm`;
    const instances: FleetInstance[] = [];
    const starting = Array.from({ length: o.size }, async (_, n) => {
      const id = `gw-${n + 1}`;
      const dir = tempDir(`behalf-${id}-`);
      writeFileSync(
        join(dir, 'keys.json'),
        JSON.stringify({
          version: 1,
          keys: [storeEntry('agent-main', keys.main), storeEntry('agent-spare', keys.spare)],
        }),
      );
      const config = {
        server: { host: '127.0.0.1', port: 0, publicUrl: PUBLIC_URL },
        clientAuth: { methods: ['api-key'] },
        clients: [{ id: 'agent', oauthClientIds: ['agent'] }],
        keys: { file: 'keys.json' },
        userAuth: {
          mode: 'dual',
          issuers: [{ issuer: idp!.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] }],
          signedContext: {
            issuer: PLATFORM,
            jwks: `file:${jwksPath}`,
            algorithms: ['ES256'],
            userClaims: ['role', 'customers'],
          },
        },
        upstreams: {
          crm: { transport: 'streamable-http', url: crmUrl, inbound: ['token', 'signed-context'] },
          ...o.upstreams,
        },
        policy: { file: policyPath, watch: n === 0 },
        audit: o.audit ?? { sqlitePath: join(dir, 'audit.db') },
        state: { redis: { url: 'env:BEHALF_FLEET_REDIS_URL', keyPrefix: o.prefix }, instanceId: id },
      };
      const configPath = join(dir, 'gateway.yaml');
      writeFileSync(configPath, stringify(config));
      const child = spawn(process.execPath, [join(OWN_ROOT, 'src/cli/main.js'), 'gateway', '--config', configPath], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...o.env, BEHALF_FLEET_REDIS_URL: `redis://127.0.0.1:${proxy!.port}` },
      });
      children.push(child);
      const output: string[] = [];
      for (const input of [child.stdout!, child.stderr!])
        createInterface({ input }).on('line', (l) => output.push(messageOf(l)));
      const instance: FleetInstance = { id, url: '', configPath, auditPath: join(dir, 'audit.db'), output, child };
      const listening = await waitForLine(instance, /behalf gateway: listening on /, 15_000);
      instance.url = `http://${listening.split(' on ')[1]!.trim()}/mcp/crm`;
      await waitForLine(instance, /fleet changes: listening on .*caught up/, 15_000);
      instances[n] = instance;
    });
    await Promise.all(starting);
    const started = idp;
    const p = proxy;
    return {
      instances,
      proxy: p,
      keys,
      resource,
      policyPath,
      platformKey: { kid, key: privateKey },
      async tokenFor(username, audience = resource) {
        const { accessToken } = await started.passwordToken({
          clientId: 'agent',
          clientSecret: 'fleet-secret',
          username,
          password: 'fleet',
          resource: audience,
        });
        return accessToken;
      },
      waitForLine,
      async restartCrm() {
        await stop(children[0]!, 'SIGTERM');
        const next = spawn(
          process.execPath,
          [join(OWN_ROOT, 'demo/crm/http-main.js'), '--port', new URL(crmUrl).port],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        children[0] = next;
        await lineOf(next, /^\{"url"/);
      },
      async close() {
        for (const c of children.slice(1)) await stop(c, 'SIGINT');
        await stop(children[0]!, 'SIGTERM');
        await started.close();
        await p.close();
      },
    };
  } catch (err) {
    for (const c of children) await stop(c, 'SIGKILL');
    await idp?.close();
    await proxy?.close();
    throw err;
  }
}

async function waitForLine(i: FleetInstance, re: RegExp, timeoutMs = 5000, from = 0): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = i.output.slice(from).find((l) => re.test(l));
    if (hit) return hit;
    if (i.child.exitCode !== null) throw new Error(`${i.id} exited: ${i.output.join('\n')}`);
    if (Date.now() > deadline)
      throw new Error(`${i.id}: no line ${re} within ${timeoutMs} ms:\n${i.output.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
