import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a request refused before its body was read may still send before its answer: bytes and time. */
export const DRAIN_BYTES = 65_536;
export const DRAIN_MS = 1000;

/**
 * Reads and discards what is left of a request's body, up to DRAIN_BYTES (what
 * Node already buffered included) and for up to DRAIN_MS; resolves when the body
 * ended or either bound was reached. Nothing is kept or parsed.
 */
export function drainBriefly(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.complete || req.destroyed) return resolve();
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', done);
      req.off('close', done);
      // Not a byte more: what is left is answered with a closed connection.
      if (!req.complete) req.pause();
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_BYTES) done();
    };
    const timer = setTimeout(done, DRAIN_MS);
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
  });
}

/**
 * Answers a request refused without reading its body (authentication, headers,
 * route). Closing a connection while its body is still arriving resets it, and
 * the reset can overtake the answer — a client with a small body and an
 * expired token would see a broken connection instead of its 401. So a small
 * rest is drained first; a body larger or slower than that is not waited for:
 * the answer goes out with `connection: close` and the connection closes.
 */
export async function answerUnread(req: IncomingMessage, res: ServerResponse, answer: () => void): Promise<void> {
  if (!req.complete) await drainBriefly(req);
  if (!req.complete) res.setHeader('connection', 'close');
  answer();
}

/**
 * After any answer: a body still arriving (a request answered without reading
 * it, such as GET /healthz with a body) gets the same small drain, then its
 * connection is closed, so no body can hold a connection with no deadline.
 */
export function closeAfterUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  res.once('finish', () => {
    if (req.complete || req.socket.destroyed) return;
    void drainBriefly(req).then(() => {
      if (!req.complete) req.socket.destroy();
    });
  });
}
