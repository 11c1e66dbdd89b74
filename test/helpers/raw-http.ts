/**
 * Raw HTTP against the gateway, below any MCP client: these tests need to
 * send what a well-behaved client never would (a foreign Host header, a
 * chunked oversized body, garbage JSON), and to watch a stream end.
 * node:http rather than fetch, because fetch will not send an arbitrary Host.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import assert from 'node:assert/strict';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: unknown;
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length), in `chunkSize` pieces. */
  chunked?: boolean;
  chunkSize?: number;
  /** Give up (reject) when the whole response has not arrived by then; default 20 s. */
  timeoutMs?: number;
}

/** The body parsed as JSON when it is JSON, else undefined. */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads a node:http(s) response to its end. */
export function readResponseBody(res: IncomingMessage): Promise<{ text: string; json: unknown }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ text, json: jsonOrUndefined(text) });
    });
  });
}

/** One request on a fresh connection; resolves with the whole response. */
export function rawRequest(url: string, o: RawRequestOptions = {}): Promise<RawResponse> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...o.headers };
  const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
  if (body && o.chunked) headers['transfer-encoding'] = 'chunked';
  else if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: o.method ?? 'GET',
        headers,
        agent: false,
      },
      (res) => {
        readResponseBody(res).then(
          ({ text, json }) => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json }),
          reject,
        );
      },
    );
    // A response that never ends (say, a stream opened where a refusal was expected) fails the test instead of hanging it.
    const timer = setTimeout(
      () => req.destroy(new Error(`no complete response from ${o.method ?? 'GET'} ${u.pathname} in time`)),
      o.timeoutMs ?? 20_000,
    );
    req.on('close', () => clearTimeout(timer));
    // The server may answer (413) and stop reading before the body is sent: that is not a client failure.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    if (body && o.chunked) {
      const size = o.chunkSize ?? 1024;
      for (let i = 0; i < body.length; i += size) req.write(body.subarray(i, i + size));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** POSTs one JSON-RPC body (object, array, or raw text) as JSON. */
export function postJson(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  sessionId?: string,
): Promise<RawResponse> {
  return rawRequest(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...headers,
      ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'behalf-raw-test', version: '0.0.0' },
  },
} as const;

/**
 * Opens a Streamable HTTP session the raw way; returns its id after `notifications/initialized` is accepted.
 * `protocolVersion`: what initialize asks for (2025-03-26 for a session that may send batches).
 */
export async function openSession(
  url: string,
  headers: Record<string, string>,
  protocolVersion: string = INITIALIZE.params.protocolVersion,
): Promise<string> {
  const init = await postJson(url, headers, { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion } });
  assert.equal(init.status, 200, `initialize: ${init.text}`);
  const id = init.headers['mcp-session-id'];
  assert.equal(typeof id, 'string', 'initialize returned no Mcp-Session-Id');
  const note = await postJson(url, headers, { jsonrpc: '2.0', method: 'notifications/initialized' }, id as string);
  assert.equal(note.status, 202, `notifications/initialized: ${note.text}`);
  return id as string;
}

let nextId = 1;
/** A `tools/call` request body with a fresh id. */
export function toolCall(name: string | undefined, args: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id: nextId++,
    method: 'tools/call',
    params: { ...(name === undefined ? {} : { name }), arguments: args },
  };
}

export function rpc(method: string, params?: Record<string, unknown>): Record<string, unknown> {
  return { jsonrpc: '2.0', id: nextId++, method, ...(params ? { params } : {}) };
}

/** The JSON-RPC error of a response body (single message), failing when there is none. */
export function rpcError(r: RawResponse): { code: number; message: string } {
  const body = r.json as { error?: { code: number; message: string } } | undefined;
  assert.ok(body?.error, `expected a JSON-RPC error, got ${r.status} ${r.text}`);
  return body.error;
}

/** The JSON-RPC result of a response body (single message), failing when there is none. */
export function rpcResult(r: RawResponse): Record<string, unknown> {
  const body = r.json as { result?: Record<string, unknown>; error?: unknown } | undefined;
  assert.equal(r.status, 200, r.text);
  assert.ok(body?.result, `expected a JSON-RPC result, got ${r.text}`);
  return body.result;
}

/** No secret and nothing internal in what a caller sees. */
export function assertNoLeak(text: string, secrets: readonly string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), 'a secret appears in the response');
  assert.doesNotMatch(
    text,
    /\n\s+at [^\n]+:\d+:\d+|node:internal|\/dist\/|\.ts:\d+|Error: /,
    'the response carries internals',
  );
}

export interface SseEvent {
  event: string;
  data: string;
}

export interface RawStream {
  status: number;
  headers: IncomingHttpHeaders;
  events: SseEvent[];
  /** Resolves with the next event (already received or future); rejects when the stream ends first. */
  nextEvent(timeoutMs?: number): Promise<SseEvent>;
  /** Resolves with Date.now() when the server ends the stream. */
  ended: Promise<number>;
  readonly isEnded: boolean;
  /** Body text of a non-stream answer (e.g. a 401), once ended. */
  text(): string;
  close(): void;
}

/** Opens a GET stream and parses its server-sent events as they arrive. */
export function rawStream(url: string, headers: Record<string, string>): Promise<RawStream> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname,
      port: u.port,
      path: `${u.pathname}${u.search}`,
      method: 'GET',
      headers: { accept: 'text/event-stream', ...headers },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      const events: SseEvent[] = [];
      const waiters: Array<{ resolve: (e: SseEvent) => void; reject: (e: Error) => void }> = [];
      let buffer = '';
      let raw = '';
      let isEnded = false;
      let consumed = 0;
      let endedResolve!: (t: number) => void;
      const ended = new Promise<number>((r) => {
        endedResolve = r;
      });
      const finish = () => {
        if (isEnded) return;
        isEnded = true;
        endedResolve(Date.now());
        for (const w of waiters.splice(0)) w.reject(new Error('stream ended'));
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        buffer += chunk;
        let sep: number;
        while ((sep = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, sep);
          buffer = buffer.slice(sep + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (data.length === 0) continue; // a comment (keep-alive)
          const e = { event, data: data.join('\n') };
          events.push(e);
          const w = waiters.shift();
          if (w) {
            consumed++;
            w.resolve(e);
          }
        }
      });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        ended,
        get isEnded() {
          return isEnded;
        },
        text: () => raw,
        nextEvent(timeoutMs = 10_000) {
          if (consumed < events.length) return Promise.resolve(events[consumed++]!);
          if (isEnded) return Promise.reject(new Error('stream ended'));
          return new Promise<SseEvent>((res2, rej) => {
            const waiter = {
              resolve: (e: SseEvent) => {
                clearTimeout(timer);
                res2(e);
              },
              reject: (e: Error) => {
                clearTimeout(timer);
                rej(e);
              },
            };
            const timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(waiter), 1);
              rej(new Error('no event in time'));
            }, timeoutMs);
            waiters.push(waiter);
          });
        },
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}

/** Announces a body of `declaredLength` bytes, sends only `partial`, and waits for the server to give up on the rest. */
export function slowBodyRequest(
  url: string,
  headers: Record<string, string>,
  partial: string,
  declaredLength: number,
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { ...headers, 'content-length': String(declaredLength) },
        agent: false,
      },
      (res) => {
        readResponseBody(res).then(({ text, json }) => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          req.destroy();
        }, reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    // A server that never gives up would hang the test: fail it instead.
    const timer = setTimeout(() => req.destroy(new Error('the server never answered the slow body')), 10_000);
    req.on('close', () => clearTimeout(timer));
    req.write(partial);
  });
}
