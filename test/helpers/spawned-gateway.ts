/**
 * A gateway running as its own process (`node <root>/src/cli/main.js gateway
 * --config …`), in front of the demo CRM (its own process too) and trusting
 * the dev IdP, as an operator runs it: what it costs is read from its own
 * /proc entry, and load generated elsewhere cannot hide in its event loop.
 * `root` is a compiled tree (default: this one), so the same script can drive
 * an older build for a before/after measurement.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startDevIdp, type DevIdp } from '../../demo/idp/index.js';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import { DEMO_USERS, userClaims } from '../../demo/quickstart/users.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { tempDir } from './tmp.js';
import { messageOf } from './log-lines.js';

/** This compiled tree (dist/). */
export const OWN_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface SpawnedGateway {
  /** The CRM route, /mcp/crm. */
  url: string;
  baseUrl: string;
  pid: number;
  apiKey: string;
  /** What the demo agent sends for alice: its API key and her token. */
  alice: Record<string, string>;
  /** The same for any demo user: the agent's API key and a fresh token of hers for the CRM route. */
  headersFor(user: string): Promise<Record<string, string>>;
  /** The gateway's audit database (SQLite). */
  auditPath: string;
  /** Lines the gateway printed (stdout and stderr). */
  output: string[];
  /** Resident set size of the gateway process, in bytes (/proc). */
  rss(): number;
  close(): Promise<void>;
}

/** Resolves with the first line of a child's output that matches, rejects if it exits first. */
export function lineOf(child: ChildProcess, match: RegExp, into?: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const onLine = (raw: string) => {
      const l = messageOf(raw);
      into?.push(l);
      if (match.test(l)) resolve(l);
    };
    for (const input of [child.stdout, child.stderr]) if (input) createInterface({ input }).on('line', onLine);
    // 'close', not 'exit': a child's last lines can arrive after it exited.
    child.once('close', (code) => reject(new Error(`child ended (${code}) before printing ${match}`)));
  });
}

/** Samples a process's RSS every `everyMs` until stopped; `stop` returns the peak seen. */
export function rssPeak(pid: number, everyMs = 25): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

export function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export async function startSpawnedGateway(
  o: {
    root?: string;
    server?: Record<string, unknown>;
    client?: Record<string, unknown>;
    /** Further top-level config sections (e.g. `sessions`); only keys that `root`'s schema knows. */
    config?: Record<string, unknown>;
    nodeArgs?: string[];
  } = {},
): Promise<SpawnedGateway> {
  // BEHALF_GATEWAY_ROOT: run a test against another compiled tree (e.g. one from before a change), to see it fail there.
  const root = o.root ?? process.env.BEHALF_GATEWAY_ROOT ?? OWN_ROOT;
  const crm = spawn(process.execPath, [join(OWN_ROOT, 'demo/crm/http-main.js'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let idp: DevIdp | undefined;
  let gw: ChildProcess | undefined;
  try {
    const crmUrl = (JSON.parse(await lineOf(crm, /^\{"url"/)) as { url: string }).url;
    idp = await startDevIdp({
      users: DEMO_USERS.map((u) => ({ sub: u.name, password: 'abuse', claims: userClaims(u) })),
      clients: [{ clientId: 'agent', clientSecret: 'abuse-secret', grantTypes: ['password'], scope: 'mcp:tools' }],
    });
    const dir = tempDir('behalf-abuse-');
    const apiKey = generateApiKey();
    const config = {
      server: { host: '127.0.0.1', port: 0, ...o.server },
      clientAuth: { methods: ['api-key'] },
      clients: [
        { id: 'agent', apiKeys: [{ id: 'k1', hash: hashApiKey(apiKey) }], oauthClientIds: ['agent'], ...o.client },
      ],
      userAuth: {
        mode: 'dual',
        issuers: [{ issuer: idp.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] }],
      },
      upstreams: { crm: { transport: 'streamable-http', url: crmUrl } },
      policy: { rules: DEMO_POLICY },
      audit: { sqlitePath: join(dir, 'audit.db') },
      ...o.config,
    };
    writeFileSync(join(dir, 'gateway.yaml'), stringify(config));
    const output: string[] = [];
    const child = spawn(
      process.execPath,
      [...(o.nodeArgs ?? []), join(root, 'src/cli/main.js'), 'gateway', '--config', join(dir, 'gateway.yaml')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    gw = child;
    const url = (await lineOf(child, /behalf gateway: crm at /, output)).split(' at ')[1]!.trim();
    const started = idp;
    const headersFor = async (username: string) => {
      const { accessToken } = await started.passwordToken({
        clientId: 'agent',
        clientSecret: 'abuse-secret',
        username,
        password: 'abuse',
        resource: url,
      });
      return { 'x-api-key': apiKey, authorization: `Bearer ${accessToken}` };
    };
    return {
      url,
      baseUrl: new URL(url).origin,
      pid: child.pid!,
      apiKey,
      alice: await headersFor('alice'),
      headersFor,
      output,
      auditPath: join(dir, 'audit.db'),
      rss: () => rssOf(child.pid!),
      async close() {
        await stop(child, 'SIGINT');
        await stop(crm, 'SIGTERM');
        await started.close();
      },
    };
  } catch (err) {
    if (gw) await stop(gw, 'SIGKILL');
    await stop(crm, 'SIGKILL');
    await idp?.close();
    throw err;
  }
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** POSTs JSON on a kept-alive connection (the caller's own agent), so a call costs what a real client's does. */
export function postOn(agent: Agent, url: string, headers: Record<string, string>, body: unknown): Promise<Answer> {
  return sendOn(agent, url, 'POST', headers, body);
}

/** One MCP HTTP request (a POST with a JSON body, or a bodyless DELETE) on the caller's own agent. */
export function sendOn(
  agent: Agent,
  url: string,
  method: 'POST' | 'DELETE',
  headers: Record<string, string>,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<Answer> {
  const u = new URL(url);
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method,
        agent,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          accept: 'application/json, text/event-stream',
          'content-length': String(Buffer.byteLength(text)),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(text);
  });
}

/** alice, as an MCP client: one session, then get_customer calls on it, each timed. */
export async function aliceCaller(
  gw: SpawnedGateway,
  protocolVersion = '2025-11-25',
): Promise<{ call(): Promise<number>; close(): void }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const init = await postOn(agent, gw.url, gw.alice, {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'abuse-test', version: '0' } },
  });
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sid !== 'string') throw new Error(`initialize: ${init.status} ${init.text}`);
  const headers = { ...gw.alice, 'mcp-session-id': sid, 'mcp-protocol-version': protocolVersion };
  await postOn(agent, gw.url, headers, { jsonrpc: '2.0', method: 'notifications/initialized' });
  let id = 1;
  return {
    async call() {
      const t = performance.now();
      const r = await postOn(agent, gw.url, headers, {
        jsonrpc: '2.0',
        id: id++,
        method: 'tools/call',
        params: { name: 'get_customer', arguments: { customer_id: 'c-100' } },
      });
      const took = performance.now() - t;
      if (r.status !== 200 || !r.text.includes('"owner":"alice"'))
        throw new Error(`alice's call: ${r.status} ${r.text}`);
      return took;
    },
    close: () => agent.destroy(),
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

/** Runs the load generator (./abuse-load.js) as its own process; `ready` resolves when its load is in place. */
export function startLoad(args: Record<string, unknown>): {
  ready: Promise<unknown>;
  done: Promise<unknown>;
  stop(): void;
} {
  const child = spawn(process.execPath, [join(OWN_ROOT, 'test/helpers/abuse-load.js'), JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The senders stand for machines elsewhere: at the lowest priority, what they cost this (shared) machine to
  // generate does not count against the gateway; what the gateway spends on their requests still does.
  setPriority(child.pid!, 19);
  const lines: string[] = [];
  const ready = lineOf(child, /^\{"ready"/, lines).then((l) => (JSON.parse(l) as { ready: unknown }).ready);
  const done = lineOf(child, /^\{"done"/, lines).then((l) => (JSON.parse(l) as { done: unknown }).done);
  return { ready, done, stop: () => child.kill('SIGTERM') };
}
