/**
 * The upstream and the peers behalf is compared with, each started as its
 * own process: server-everything over Streamable HTTP (the upstream every
 * HTTP target reaches), mcp-proxy in front of the same server over stdio,
 * and nginx as a plain reverse proxy when it is installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/free-port.js';
import { startProcess, type Running } from './processes.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
/** server-everything's CLI: `stdio` (default) or `streamableHttp` (port from PORT, endpoint /mcp). */
export const EVERYTHING = join(root, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const MCP_PROXY = join(root, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');

export interface Upstream extends Running {
  url: string;
  port: number;
  /** Requests it logged so far, by method (server-everything logs a line per request). */
  requests(): { post: number; get: number; del: number };
}

export async function startEverythingHttp(): Promise<Upstream> {
  const port = await freePort();
  const p = await startProcess(process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    ready: /listening on port/,
    count: { post: /^Received MCP POST request/, get: /^Received MCP GET request/, del: /session termination/ },
  });
  return {
    ...p,
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    requests: () => ({ post: p.counts.get('post')!, get: p.counts.get('get')!, del: p.counts.get('del')! }),
  };
}

/** Resolves once something accepts TCP connections on the port (a server that logs before it listens). */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** mcp-proxy (its defaults, no auth): one stdio child of server-everything shared by every session. */
export async function startMcpProxy(): Promise<Running & { url: string }> {
  const port = await freePort();
  const p = await startProcess(
    process.execPath,
    [
      MCP_PROXY,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--server',
      'stream',
      '--',
      process.execPath,
      EVERYTHING,
    ],
    { ready: /starting server on port/ },
  );
  await waitForPort(port);
  return { ...p, url: `http://127.0.0.1:${port}/mcp` };
}

/** The bare Node.js proxy (node-proxy.ts) in front of the HTTP upstream. */
export async function startNodeProxy(upstreamUrl: string): Promise<Running & { url: string }> {
  const p = await startProcess(
    process.execPath,
    [fileURLToPath(new URL('./node-proxy.js', import.meta.url)), upstreamUrl],
    { ready: /node proxy listening on port \d+/ },
  );
  const port = Number(/port (\d+)/.exec(p.tail.join('\n'))?.[1]);
  if (!port) throw new Error('the node proxy did not say its port');
  return { ...p, url: `http://127.0.0.1:${port}/mcp` };
}

export function nginxAvailable(): boolean {
  return spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0;
}

/**
 * nginx as the floor of a plain reverse proxy: one worker, kept-alive
 * upstream connections, no buffering (answers may be SSE), no access log.
 * `refuseGet` answers GET with 405, as an upstream without a standing stream
 * does, so the sessions bench can show what a session costs without one.
 */
export async function startNginx(
  upstreamPort: number,
  dir: string,
  o: { refuseGet?: boolean } = {},
): Promise<Running & { url: string; port: number }> {
  const port = await freePort();
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs/error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  upstream everything { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {${o.refuseGet ? '\n      if ($request_method = GET) { return 405; }' : ''}
      proxy_pass http://everything;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`,
  );
  // nginx prints nothing when it starts well: wait for its port instead of a line.
  const child = spawn(
    'nginx',
    ['-p', dir, '-e', join(dir, 'logs/error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  await waitForPort(port);
  return {
    child,
    pid: child.pid!,
    counts: new Map(),
    tail: [],
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    async stop() {
      // SIGQUIT: nginx's graceful shutdown of master and workers.
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
    },
  };
}
