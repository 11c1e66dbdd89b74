import { createServer } from 'node:net';

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** The first port from `start` that is free on `host`, so URLs are predictable and two quickstarts can coexist. */
export async function firstFreePort(start: number, host = '127.0.0.1', avoid: readonly number[] = []): Promise<number> {
  for (let p = start; p < start + 200; p++) {
    if (avoid.includes(p)) continue;
    if (await canListen(p, host)) return p;
  }
  throw new Error(`no free port in ${start}-${start + 199}`);
}
