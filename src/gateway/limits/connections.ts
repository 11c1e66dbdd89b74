import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { IntervalLogger } from './tally.js';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export interface ConnectionGuard {
  /** The request came on a connection accepted past maxConnections: only /healthz is answered on it (503 otherwise). */
  overCapacity(req: IncomingMessage): boolean;
  /** Logs a request refused for it, at most once per interval (with a count). */
  noteRefused(): void;
  readonly open: number;
}

/** Connections past maxConnections that are still read, so /healthz keeps answering and the rest get a 503. */
export function overflowOf(maxConnections: number): number {
  return Math.max(16, Math.ceil(maxConnections / 16));
}

/** The peer's address (what per-address limits and records count by). */
export function addressOf(socket: Socket): string | undefined {
  const a = socket.remoteAddress;
  // An IPv4 client of a dual-stack listener is one address, however it is written.
  return a?.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * Bounds open connections, counted as they are accepted (before any byte is
 * read, and for TLS before the handshake):
 * - from one remote address past maxConnectionsPerIp: closed at once, no answer
 *   (one source holding that many is abusing; answering would cost more);
 * - past maxConnections: accepted into a small overflow, where GET /healthz is
 *   still answered and every other request gets 503 with Retry-After; past the
 *   overflow, closed at once.
 * Each kind of refusal is logged once per interval with a count, never once per connection.
 */
export function guardConnections(server: Server, limits: ConnectionLimits, logs: IntervalLogger): ConnectionGuard {
  const fromIp = new Map<string, number>();
  const over = new Set<string>();
  let open = 0;
  const hardCap = limits.maxConnections + overflowOf(limits.maxConnections);
  server.on('connection', (socket: Socket) => {
    const ip = addressOf(socket);
    if (ip === undefined) return void socket.destroy();
    const n = fromIp.get(ip) ?? 0;
    if (n >= limits.maxConnectionsPerIp) {
      logs.note(
        `ip ${ip}`,
        `connection from ${ip} closed: server.maxConnectionsPerIp (${limits.maxConnectionsPerIp}) reached`,
      );
      return void socket.destroy();
    }
    if (open >= hardCap) {
      logs.note('hard', `connection closed: server.maxConnections (${limits.maxConnections}) and its overflow reached`);
      return void socket.destroy();
    }
    open++;
    fromIp.set(ip, n + 1);
    const id = `${socket.remoteAddress}:${socket.remotePort}`;
    const isOver = open > limits.maxConnections;
    if (isOver) over.add(id);
    socket.once('close', () => {
      open--;
      const left = (fromIp.get(ip) ?? 1) - 1;
      if (left > 0) fromIp.set(ip, left);
      else fromIp.delete(ip);
      if (isOver) over.delete(id);
    });
  });
  return {
    // The request's socket is the TLS socket for HTTPS, the accepted one otherwise: both have the peer's address and port.
    overCapacity: (req) => over.size > 0 && over.has(`${req.socket.remoteAddress}:${req.socket.remotePort}`),
    noteRefused: () =>
      logs.note('busy', `request refused with 503: server.maxConnections (${limits.maxConnections}) reached`),
    get open() {
      return open;
    },
  };
}
