/**
 * The conformance suite's reference server behind a real gateway: the dev
 * IdP, the gateway as its own process with an allow-everything policy, and a
 * small proxy in front that adds the agent's API key and a user's token (the
 * suite sends no credentials). The gateway's public URL is the proxy's
 * origin, so its Origin and resource checks see what the suite sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startDevIdp, type DevIdp } from '../../demo/idp/index.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { lineOf, OWN_ROOT } from './spawned-gateway.js';
import { tempDir } from './tmp.js';

export interface ConformanceRig {
  /** The proxy's URL of the gateway route, for the suite. */
  url: string;
  /** The gateway's own URL of the route (no credentials added). */
  gatewayUrl: string;
  /** Credentials the proxy adds: the agent's API key and a user's token. */
  headers: Record<string, string>;
  output: string[];
  auditPath: string;
  close(): Promise<void>;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}

/** Forwards every request to `target`, with `headers()` added; responses stream back untouched. */
function credentialProxy(target: () => URL, headers: () => Record<string, string>): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const t = target();
    const upstream = request(
      {
        host: t.hostname,
        port: t.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, ...headers() },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
}

/** Starts the rig in front of an MCP server at `upstreamUrl` (Streamable HTTP). */
export async function startConformanceRig(upstreamUrl: string): Promise<ConformanceRig> {
  const idp: DevIdp = await startDevIdp({
    users: [{ sub: 'alice', password: 'conformance', claims: {} }],
    clients: [{ clientId: 'agent', clientSecret: 'agent-secret', grantTypes: ['password'], scope: 'mcp:tools' }],
  });
  const apiKey = generateApiKey();
  let gatewayOrigin = new URL('http://127.0.0.1:1');
  let creds: Record<string, string> = {};
  const proxy = credentialProxy(
    () => gatewayOrigin,
    () => creds,
  );
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const proxyOrigin = `http://localhost:${(proxy.address() as AddressInfo).port}`;
  const dir = tempDir('behalf-conformance-');
  const config = {
    server: { host: '127.0.0.1', port: 0, publicUrl: proxyOrigin },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: hashApiKey(apiKey) }], oauthClientIds: ['agent'] }],
    userAuth: { mode: 'dual', issuers: [{ issuer: idp.issuer, algorithms: ['ES256'] }] },
    // Allow-all and faithful: the agent's roots reach the upstream too (MRTR roots/list input requests included).
    upstreams: { fixture: { transport: 'streamable-http', url: upstreamUrl, forwardClientRoots: true } },
    policy: { rules: [{ id: 'conformance-allow-all', effect: 'allow', methods: ['*'] }] },
    audit: { sqlitePath: join(dir, 'audit.db') },
    // The suite opens a session (or stream) per scenario as one user and ends none of them: at the default
    // per-user quota (16) the later scenarios would measure the quota, which session-quotas.test.ts covers.
    sessions: { maxPerUser: 1000, maxStreamsPerUser: 1000 },
  };
  writeFileSync(join(dir, 'gateway.yaml'), stringify(config));
  const output: string[] = [];
  const gw = spawn(
    process.execPath,
    [join(OWN_ROOT, 'src/cli/main.js'), 'gateway', '--config', join(dir, 'gateway.yaml')],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  try {
    await lineOf(gw, /behalf gateway: fixture at /, output);
    const port = output.map((l) => /listening on 127\.0\.0\.1:(\d+)/.exec(l)?.[1]).find(Boolean);
    if (!port) throw new Error(`gateway did not print its port: ${output.join('\n')}`);
    gatewayOrigin = new URL(`http://127.0.0.1:${port}`);
    const url = `${proxyOrigin}/mcp/fixture`;
    const { accessToken } = await idp.passwordToken({
      clientId: 'agent',
      clientSecret: 'agent-secret',
      username: 'alice',
      password: 'conformance',
      resource: url,
    });
    creds = { 'x-api-key': apiKey, authorization: `Bearer ${accessToken}` };
    return {
      url,
      gatewayUrl: `${gatewayOrigin.origin}/mcp/fixture`,
      headers: creds,
      output,
      auditPath: join(dir, 'audit.db'),
      async close() {
        await stop(gw);
        await new Promise<void>((r) => proxy.close(() => r()));
        proxy.closeAllConnections();
        await idp.close();
      },
    };
  } catch (err) {
    await stop(gw);
    proxy.close();
    (err as Error).message += `\n${output.join('\n')}`;
    await idp.close();
    throw err;
  }
}
