import type { ServerResponse } from 'node:http';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { LoggedEvent, SessionEventLog } from './event-log.js';

/** The stream of a session an SSE response carries, when its events are kept for resumption. */
export interface StreamRecord {
  log: SessionEventLog;
  stream: string;
}

/** How long a client should wait before resuming a stream the gateway ended (`retry:`), unless the upstream said. */
export const DEFAULT_RETRY_MS = 1_000;

/** One open server-sent-events response. */
export class SseWriter {
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;
  onClose?: () => void;

  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string> = {},
    private readonly record?: StreamRecord,
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    res.flushHeaders();
    res.on('close', () => this.finish());
    // A comment line every 25 s keeps idle proxies from cutting the stream.
    this.keepAlive = setInterval(() => this.res.write(': keep-alive\n\n'), 25_000);
    this.keepAlive.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  event(name: string, data: string): void {
    if (this.closed) return;
    this.res.write(`event: ${name}\ndata: ${data}\n\n`);
  }

  /**
   * The first event of a resumable stream: an id and no data, so a client
   * that loses the stream before any message can still resume it, and how
   * long to wait before doing so.
   */
  prime(retryMs = DEFAULT_RETRY_MS): void {
    if (this.closed || !this.record) return;
    const id = this.record.log.append(this.record.stream, '');
    this.res.write(`id: ${id}\nretry: ${retryMs}\ndata: \n\n`);
  }

  /** Tells the client when to come back, then ends the response (the stream itself lives on in the log). */
  pause(retryMs: number): void {
    if (this.closed) return;
    this.res.write(`retry: ${retryMs}\n\n`);
    this.close();
  }

  message(msg: JsonRpcMessage): void {
    if (this.closed) return;
    const data = JSON.stringify(msg);
    const id = this.record?.log.append(this.record.stream, data);
    this.res.write(`${id ? `id: ${id}\n` : ''}event: message\ndata: ${data}\n\n`);
  }

  /** Events a resuming client missed, as they were first sent (priming events carry nothing to replay). */
  replay(events: readonly LoggedEvent[]): void {
    if (this.closed) return;
    const text = events
      .filter((e) => e.data !== '')
      .map((e) => `id: ${e.id}\nevent: message\ndata: ${e.data}\n\n`)
      .join('');
    if (text) this.res.write(text);
  }

  close(): void {
    if (this.closed) return;
    this.res.end();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    this.onClose?.();
  }
}
