import type { ServerResponse } from 'node:http';
import type { JsonRpcMessage } from '../jsonrpc.js';

/** One open server-sent-events response. */
export class SseWriter {
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;
  onClose?: () => void;

  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string> = {},
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

  message(msg: JsonRpcMessage): void {
    this.event('message', JSON.stringify(msg));
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
