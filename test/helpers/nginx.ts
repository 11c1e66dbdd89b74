/**
 * Real nginx in front of a fleet, configured from examples/fleet/nginx.conf.template
 * (so the test runs the example's settings), in a temp folder of its own: no
 * root, nothing under /var. `nginxBinary()` is undefined when nginx is not
 * installed (`.ci/run` installs Debian's).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OWN_ROOT } from './spawned-gateway.js';
import { tempDir } from './tmp.js';
import { freePort } from './free-port.js';

export const NGINX_TEMPLATE = join(OWN_ROOT, '..', 'examples/fleet/nginx.conf.template');

export function nginxBinary(): string | undefined {
  return ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p));
}

export interface Nginx {
  /** http://127.0.0.1:PORT */
  origin: string;
  dir: string;
  /** The master process (its workers are its children). */
  pid: number;
  close(): Promise<void>;
}

async function listening(origin: string, child: ChildProcess, errorLog: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(errorLog, 'utf8')}`);
    try {
      await fetch(`${origin}/nginx-probe`);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nginx is not listening on ${origin}`, { cause: err });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts nginx round robin over `gateways` (three host:port addresses, as the
 * template has; one address three times is one instance), on `port` when the
 * gateways must know it first (their public URL).
 */
export async function startNginx(gateways: [string, string, string], o: { port?: number } = {}): Promise<Nginx> {
  const bin = nginxBinary();
  if (!bin) throw new Error('nginx is not installed');
  const dir = tempDir('behalf-nginx-');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const port = o.port ?? (await freePort());
  const conf = readFileSync(NGINX_TEMPLATE, 'utf8')
    .replaceAll('@LISTEN@', `127.0.0.1:${port}`)
    .replaceAll('@GW1@', gateways[0])
    .replaceAll('@GW2@', gateways[1])
    .replaceAll('@GW3@', gateways[2])
    .replaceAll('@DIR@', dir);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const origin = `http://127.0.0.1:${port}`;
  await listening(origin, child, join(dir, 'error.log'));
  return {
    origin,
    dir,
    pid: child.pid!,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        // QUIT: graceful, the workers finish what they serve and exit with the master.
        child.kill('SIGQUIT');
      }),
  };
}
