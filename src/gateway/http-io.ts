import type { IncomingMessage, ServerResponse } from 'node:http';
import { BehalfError } from '../errors.js';
import type { BodyHold } from './limits/body-budget.js';

/** The buffered-body budget is spent: 503, try again in a second (bodies in progress finish within bodyTimeoutMs). */
function overBudget(): BehalfError {
  return new BehalfError('over_capacity', undefined, { retryAfter: '1' });
}

/**
 * Reads a body up to `limit` bytes within `timeoutMs`; past either the request
 * is refused without reading the rest (the server's own request timeout is
 * off, because streams are long-lived, so a slow body needs its own bound).
 * The bytes are taken from `hold` (the gateway's buffered-body budget) before
 * they are kept: the declared length at once, else each chunk as it arrives.
 */
export function readBody(
  req: IncomingMessage,
  o: { limit: number; timeoutMs: number; hold?: BodyHold },
): Promise<Buffer> {
  const { limit, hold } = o;
  const declared = Number(req.headers['content-length']);
  const hasLength = req.headers['content-length'] !== undefined && Number.isFinite(declared);
  if (hasLength && declared > limit) return Promise.reject(new BehalfError('body_too_large'));
  if (hasLength && hold && !hold.take(declared)) return Promise.reject(overBudget());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      chunks.length = 0;
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(() => fail(new BehalfError('body_timeout')), o.timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) return fail(new BehalfError('body_too_large'));
      if (!hasLength && hold && !hold.take(chunk.length)) return fail(overBudget());
      chunks.push(chunk);
    });
    req.on('end', () => {
      clearTimeout(timer);
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) =>
      fail(new BehalfError('invalid_request', 'request body could not be read', {}, { cause: err })),
    );
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
