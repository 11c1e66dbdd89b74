import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { BehalfError, toJsonRpcError } from '../../errors.js';
import { isRequest, isResponse, type JsonRpcMessage } from '../../jsonrpc.js';
import type { HttpPools } from './http-pools.js';
import type { MessageOrigin, UpstreamTransport } from './transport.js';
import { parseMessages, readEventStream, type StreamPosition } from './upstream-messages.js';

export interface HttpTransportOptions {
  url: URL;
  pools: HttpPools;
  /** Headers of this request to the upstream: static ones and the user's downstream credential, never the client's token. */
  headers: () => Promise<Record<string, string>>;
  /** Bounds the wait for response headers; the call itself is bounded by the connection's timeout. */
  headersTimeoutMs: number;
  log: (line: string) => void;
}

/** The upstream answered 404 for its session: it no longer knows it (restarted, or expired it). */
export class UpstreamSessionLost extends Error {
  constructor() {
    super('upstream session not found (404)');
  }
}

/** Failed attempts at resuming a stream the upstream closed before answering, before the call fails. */
const MAX_FAILED_RESUMES = 5;
/** Resumptions of one call's stream in all: an upstream that pauses forever does not hold the gateway forever. */
const MAX_RESUMES = 100;
const DEFAULT_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

/**
 * Streamable HTTP to an upstream, on pooled kept-alive connections (undici),
 * without fetch or web streams. It knows which request each message of a
 * POST's SSE stream belongs to and says so (`MessageOrigin.relatedTo`), so
 * the gateway can keep a call's notifications on the call's own stream. A
 * stream the upstream ends before answering (SSE polling) is resumed with
 * `Last-Event-ID` after the upstream's `retry:`.
 */
export class StreamableHttpTransport implements UpstreamTransport {
  sessionId?: string;
  onmessage?: (msg: JsonRpcMessage, origin?: MessageOrigin) => void;
  onclose?: () => void;
  onerror?: (err: Error) => void;
  onpause?: (relatedTo: string, retryMs: number) => void;
  isPending?: (requestId: string) => boolean;
  /** A 404 for the session is reported (UpstreamSessionLost) instead of closing the connection. */
  recoverable = false;
  private protocolVersion?: string;
  private closed = false;
  private readonly inFlight = new Set<Readable>();
  private standaloneWanted = false;
  /** The upstream session is initialized: a standing stream asked for earlier can open now. */
  private initialized = false;

  constructor(private readonly o: HttpTransportOptions) {}

  async start(): Promise<void> {}

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  /** Continues an upstream session another gateway instance initialized: same session id, same version, no initialize. */
  continueSession(sessionId: string | undefined, version: string | undefined): void {
    this.sessionId = sessionId;
    this.protocolVersion = version;
    this.initialized = true;
  }

  /** Forgets the upstream session (it forgot it first), so the next initialize starts a new one. */
  resetSession(): void {
    this.sessionId = undefined;
    this.initialized = false;
  }

  async send(msg: JsonRpcMessage): Promise<void> {
    if (this.closed) throw new Error('upstream connection is closed');
    const relatedTo = isRequest(msg) ? String(msg.id) : undefined;
    const res = await this.request('POST', { accept: 'application/json, text/event-stream' }, JSON.stringify(msg));
    const sid = res.headers['mcp-session-id'];
    if (typeof sid === 'string' && !this.sessionId) this.sessionId = sid;
    const type = String(res.headers['content-type'] ?? '');
    if (res.statusCode === 202) {
      await res.body.dump();
      if ('method' in msg && msg.method === 'notifications/initialized') {
        this.initialized = true;
        if (this.standaloneWanted) void this.runStandalone();
      }
      return;
    }
    if (res.statusCode === 404 && this.sessionId) {
      await res.body.dump();
      // A fleet's session outlives its upstream session: the connection re-initializes and resends (connection.ts).
      if (this.recoverable) throw new UpstreamSessionLost();
      this.handleClosed();
      throw new Error('upstream session ended (404)');
    }
    if (res.statusCode === 200 && type.includes('text/event-stream')) {
      // The call's answer comes on the stream: sending is done once the upstream has taken it.
      void this.consume(res.body, { relatedTo }, {});
      return;
    }
    const text = await res.body.text();
    const messages = type.includes('application/json') ? parseMessages(text, (why) => this.invalid(why)) : [];
    // An upstream's JSON-RPC error (with a 4xx status) is its answer to the call, and passes as such.
    if (res.statusCode < 300 || messages.some((m) => isResponse(m) && String(m.id) === relatedTo)) {
      for (const m of messages) this.onmessage?.(m, { relatedTo });
      return;
    }
    throw new Error(`upstream answered HTTP ${res.statusCode}`);
  }

  /** Opens the session's standing GET stream (once initialized), for messages the upstream starts itself; kept open until close. */
  openStandaloneStream(): void {
    if (this.standaloneWanted || this.closed) return;
    this.standaloneWanted = true;
    if (this.initialized) void this.runStandalone();
  }

  async terminateSession(): Promise<void> {
    if (!this.sessionId || this.closed) return;
    const res = await this.request('DELETE', {});
    await res.body.dump();
  }

  async close(): Promise<void> {
    this.handleClosed();
  }

  private async runStandalone(): Promise<void> {
    const position: StreamPosition = {};
    let failures = 0;
    while (!this.closed) {
      try {
        const res = await this.request('GET', { accept: 'text/event-stream' }, undefined, position.lastEventId);
        if (res.statusCode !== 200) {
          await res.body.dump();
          // 405: the upstream has no standing stream; other refusals are not retried either (it said no).
          if (res.statusCode !== 405) this.o.log(`upstream GET stream refused: HTTP ${res.statusCode}`);
          return;
        }
        failures = 0;
        await this.consume(res.body, { standalone: true }, position);
      } catch (err) {
        if (this.closed) return;
        failures++;
        this.o.log(`upstream GET stream failed (${failures}): ${(err as Error).message}`);
      }
      const wait = Math.min(position.retryMs ?? DEFAULT_RETRY_MS * 2 ** failures, MAX_RETRY_MS);
      await new Promise((r) => setTimeout(r, wait).unref());
    }
  }

  /** Reads one SSE response; a POST's stream that ends before its answer is resumed from its last event id. */
  private async consume(body: Readable, origin: MessageOrigin, position: StreamPosition, resumes = 0): Promise<void> {
    let answered = false;
    const deliver = (m: JsonRpcMessage) => {
      if (origin.relatedTo !== undefined && isResponse(m) && String(m.id) === origin.relatedTo) answered = true;
      this.onmessage?.(m, origin);
    };
    this.inFlight.add(body);
    try {
      await readEventStream(body, position, deliver, (why) => this.invalid(why));
    } catch (err) {
      if (!this.closed) this.o.log(`upstream stream broke: ${(err as Error).message}`);
    } finally {
      this.inFlight.delete(body);
    }
    if (origin.relatedTo === undefined || answered || this.closed) return;
    await this.resume(origin.relatedTo, position, resumes);
  }

  private async resume(relatedTo: string, position: StreamPosition, resumes: number): Promise<void> {
    const retryMs = Math.min(position.retryMs ?? DEFAULT_RETRY_MS, MAX_RETRY_MS);
    if (position.lastEventId) this.onpause?.(relatedTo, retryMs);
    const wanted = () => !this.closed && (this.isPending?.(relatedTo) ?? true);
    for (let failed = 0; failed < MAX_FAILED_RESUMES && resumes < MAX_RESUMES && position.lastEventId; failed++) {
      await new Promise((r) => setTimeout(r, retryMs).unref());
      if (!wanted()) return;
      try {
        const res = await this.request('GET', { accept: 'text/event-stream' }, undefined, position.lastEventId);
        if (res.statusCode === 200) return await this.consume(res.body, { relatedTo }, position, resumes + 1);
        await res.body.dump();
      } catch (err) {
        this.o.log(`resuming an upstream stream failed: ${(err as Error).message}`);
      }
    }
    // Nothing more will come for this call: fail it now rather than at its timeout.
    if (wanted()) this.onmessage?.(toJsonRpcError(new BehalfError('upstream_unavailable'), relatedTo), { relatedTo });
  }

  private async request(
    method: 'GET' | 'POST' | 'DELETE',
    extra: Record<string, string>,
    body?: string,
    lastEventId?: string,
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { ...(await this.o.headers()), ...extra };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    if (lastEventId) headers['last-event-id'] = lastEventId;
    return this.o.pools.for(this.o.url.origin).request({
      path: this.o.url.pathname + this.o.url.search,
      method,
      headers,
      body,
      headersTimeout: this.o.headersTimeoutMs,
      bodyTimeout: 0,
    });
  }

  private invalid(why: string): void {
    this.onerror?.(new Error(why));
    this.o.log(why);
  }

  private handleClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const body of this.inFlight) body.destroy();
    this.inFlight.clear();
    this.onclose?.();
  }
}
