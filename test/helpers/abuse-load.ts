/**
 * Unauthenticated load against a gateway, from its own process, so the load
 * generator's work never delays the measured caller's event loop:
 *
 *   node dist/test/helpers/abuse-load.js '<json>'
 *
 * - `{"mode":"flood", url, senders, seconds, bodyBytes, ratePerSender?}`: each
 *   sender, in a loop, opens a connection and POSTs a key-dense JSON-RPC body
 *   (a valid tools/call whose arguments are one flat object of short keys)
 *   with no credentials, and waits for the answer or the close; at most
 *   `ratePerSender` a second when given.
 * - `{"mode":"hold", url, connections, declaredBytes, sentBytes, localAddress}`:
 *   opens that many connections, each announcing `declaredBytes` and sending
 *   only `sentBytes` of the body, and holds them until SIGTERM.
 *
 * Prints one JSON line when the load is in place (`{"ready":…}`) and one with
 * what happened when it ends (`{"done":…}`): answers by status, connections
 * the server closed or reset without an answer.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

interface Tally {
  statuses: Record<string, number>;
  /** Closed or reset by the server before any answer. */
  closedUnanswered: number;
  /** Connections that could not be made. */
  connectFailed: number;
  requests: number;
}

/** A valid JSON-RPC tools/call whose arguments are one flat object of `bodyBytes` worth of short keys. */
export function keyDenseBody(bodyBytes: number): { body: Buffer; keys: number } {
  const parts: string[] = [];
  let size = 80;
  let keys = 0;
  while (size < bodyBytes) {
    const part = `"${keys.toString(36)}":0`;
    parts.push(part);
    size += part.length + 1;
    keys++;
  }
  const text = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{${parts.join(',')}}}}`;
  return { body: Buffer.from(text), keys };
}

function requestHead(url: URL, contentLength: number): string {
  return (
    `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\ncontent-type: application/json\r\n` +
    `accept: application/json, text/event-stream\r\ncontent-length: ${contentLength}\r\n\r\n`
  );
}

/** Sends head + body on a fresh connection; resolves with the status line's code, or undefined when closed unanswered. */
function oneRequest(url: URL, head: string, body: Buffer, tally: Tally): Promise<void> {
  return new Promise((resolve) => {
    let answer = '';
    let connected = false;
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => {
      connected = true;
      socket.write(head);
      socket.write(body);
    });
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      if (answer.length < 64) answer += d;
    });
    // A server that refuses early resets a connection whose body it did not read: that is its answer here, not an error.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      tally.requests++;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (m) tally.statuses[m[1]!] = (tally.statuses[m[1]!] ?? 0) + 1;
      else if (connected) tally.closedUnanswered++;
      else tally.connectFailed++;
      resolve();
    });
    // An answer ends the exchange: the client closes rather than wait for a keep-alive timeout.
    socket.on('data', () => {
      if (/\r\n\r\n/.test(answer)) socket.destroy();
    });
  });
}

interface FloodArgs {
  mode: 'flood';
  url: string;
  senders: number;
  seconds: number;
  bodyBytes: number;
  /** At most this many requests a second per sender (each still waits for its answer); absent: as fast as answered. */
  ratePerSender?: number;
}

interface HoldArgs {
  mode: 'hold';
  url: string;
  connections: number;
  declaredBytes: number;
  sentBytes: number;
  localAddress?: string;
}

async function flood(o: FloodArgs): Promise<Tally> {
  const url = new URL(o.url);
  const { body, keys } = keyDenseBody(o.bodyBytes);
  const head = requestHead(url, body.length);
  const tally: Tally = { statuses: {}, closedUnanswered: 0, connectFailed: 0, requests: 0 };
  const until = Date.now() + o.seconds * 1000;
  process.stdout.write(`${JSON.stringify({ ready: { bodyBytes: body.length, keys } })}\n`);
  await Promise.all(
    Array.from({ length: o.senders }, async () => {
      const gapMs = o.ratePerSender ? 1000 / o.ratePerSender : 0;
      while (Date.now() < until) {
        const next = Date.now() + gapMs;
        await oneRequest(url, head, body, tally);
        const wait = next - Date.now();
        if (wait > 0) await sleep(Math.min(wait, until - Date.now()));
      }
    }),
  );
  return tally;
}

async function hold(o: HoldArgs): Promise<Tally> {
  const url = new URL(o.url);
  const head = requestHead(url, o.declaredBytes);
  const part = Buffer.alloc(o.sentBytes, 0x20); // JSON whitespace: a valid start of a body, never finished
  const tally: Tally = { statuses: {}, closedUnanswered: 0, connectFailed: 0, requests: 0 };
  const sockets: Socket[] = [];
  const closed: Array<Promise<void>> = [];
  // In waves, so the listen backlog is not what refuses connections.
  for (let i = 0; i < o.connections; i += 50) {
    const wave = Array.from({ length: Math.min(50, o.connections - i) }, () => {
      let answer = '';
      let connected = false;
      const socket = connect({ host: url.hostname, port: Number(url.port), localAddress: o.localAddress });
      sockets.push(socket);
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        if (answer.length < 64) answer += d;
      });
      socket.on('error', () => undefined);
      closed.push(
        new Promise<void>((resolve) =>
          socket.on('close', () => {
            const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
            if (m) tally.statuses[m[1]!] = (tally.statuses[m[1]!] ?? 0) + 1;
            else if (connected) tally.closedUnanswered++;
            else tally.connectFailed++;
            resolve();
          }),
        ),
      );
      return new Promise<void>((resolve) => {
        socket.once('connect', () => {
          connected = true;
          tally.requests++;
          socket.write(head);
          socket.write(part, () => resolve());
        });
        socket.once('close', () => resolve());
      });
    });
    await Promise.all(wave);
  }
  const open = sockets.filter((s) => !s.destroyed).length;
  process.stdout.write(`${JSON.stringify({ ready: { open } })}\n`);
  // Held until told: a timer keeps the process alive once the server has closed every connection.
  const alive = setInterval(() => undefined, 60_000);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  clearInterval(alive);
  for (const s of sockets) s.destroy();
  await Promise.all(closed);
  return tally;
}

const args = JSON.parse(process.argv[2] ?? '{}') as FloodArgs | HoldArgs;
const result = args.mode === 'flood' ? await flood(args) : await hold(args);
process.stdout.write(`${JSON.stringify({ done: result })}\n`);
