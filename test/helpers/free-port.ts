import { createServer } from 'node:net';

/** A loopback port free a moment ago, for a server that must be told its port before it starts (an IdP's issuer URL, nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
