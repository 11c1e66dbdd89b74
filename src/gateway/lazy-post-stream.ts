import type { ServerResponse } from 'node:http';
import type { JsonRpcMessage, JsonRpcResponse } from '../jsonrpc.js';
import { sendJson } from './http-io.js';
import { SseWriter } from './sse-writer.js';

/**
 * A POST response that becomes an SSE stream only if the upstream sends the
 * client something while the call is in flight (sampling, elicitation,
 * progress). Otherwise it is one JSON body: on this machine each write is a
 * costly syscall, and an SSE answer takes three where JSON takes one.
 */
export class LazyPostStream {
  private writer?: SseWriter;
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
  ) {}

  get isClosed(): boolean {
    return this.closed || (this.writer?.isClosed ?? false);
  }

  message(msg: JsonRpcMessage): void {
    if (this.closed) return;
    this.writer ??= new SseWriter(this.res, this.headers);
    this.writer.message(msg);
  }

  /** Sends the answers: on the stream if one was opened, else as JSON (an array for a batch). */
  finish(responses: JsonRpcResponse[], batch: boolean): void {
    if (this.closed) return;
    if (this.writer) {
      for (const r of responses) this.writer.message(r);
      this.writer.close();
    } else {
      sendJson(this.res, 200, batch ? responses : responses[0], this.headers);
    }
    this.closed = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.writer) this.writer.close();
    else this.res.end();
  }
}
