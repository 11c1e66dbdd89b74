import type { ServerResponse } from 'node:http';
import type { JsonRpcMessage, JsonRpcResponse } from '../jsonrpc.js';
import { sendJson } from './http-io.js';
import type { SessionEventLog } from './event-log.js';
import { SseWriter, type StreamRecord } from './sse-writer.js';

/** Where a resumable POST stream keeps its events, and where a resuming GET finds it while its call runs. */
export interface Resumable {
  log: SessionEventLog;
  live: Map<string, LazyPostStream>;
}

/**
 * A POST response that becomes an SSE stream only if the upstream sends the
 * client something while the call is in flight (sampling, elicitation,
 * progress). Otherwise it is one JSON body: on this machine each write is a
 * costly syscall, and an SSE answer takes three where JSON takes one.
 *
 * With a session's event log, the stream is resumable: once it opens it takes
 * a key in the log, its events carry ids, and when its response breaks — the client went away, or the
 * upstream ended its own stream to make the client poll — the stream lives
 * on in the log until a GET with `Last-Event-ID` attaches a new response.
 */
export class LazyPostStream {
  private writer?: SseWriter;
  private done = false;
  /** The stream goes on without a response attached: its events only go to the log. */
  private detached = false;
  /** Taken when the stream opens: a call answered as JSON has no events, so it costs the log nothing. */
  private record?: StreamRecord;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
    private readonly resumable?: Resumable,
  ) {}

  /** The response became an SSE stream: its status is sent. */
  get opened(): boolean {
    return this.writer !== undefined || this.detached;
  }

  get isClosed(): boolean {
    return this.done || (!this.resumable && (this.writer?.isClosed ?? false));
  }

  message(msg: JsonRpcMessage): void {
    if (this.done) return;
    if (this.detached) this.record!.log.append(this.record!.stream, JSON.stringify(msg));
    else this.open().message(msg);
  }

  /** The upstream ended its stream for now: so does this one, and the client comes back with Last-Event-ID. */
  pause(retryMs: number): void {
    if (this.done || this.detached || !this.resumable) return;
    this.open().pause(retryMs);
  }

  /** A resuming client's GET response carries the stream from here on. */
  attach(writer: SseWriter): void {
    if (this.done) return writer.close();
    // The latest resumption wins: an earlier response still attached is ended, not left to leak.
    const previous = this.writer;
    if (previous && previous !== writer) {
      previous.onClose = undefined;
      previous.close();
    }
    this.writer = writer;
    this.detached = false;
    writer.onClose = () => this.detach();
  }

  /** Sends the answers: on the stream if one was opened, else as JSON (an array for a batch). */
  finish(responses: JsonRpcResponse[], batch: boolean): void {
    if (this.done) return;
    this.done = true;
    if (this.detached) {
      for (const r of responses) this.record!.log.append(this.record!.stream, JSON.stringify(r));
    } else if (this.writer) {
      for (const r of responses) this.writer.message(r);
      this.writer.close();
    } else {
      sendJson(this.res, 200, batch ? responses : responses[0], this.headers);
    }
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    if (this.writer) this.writer.close();
    else if (!this.detached) this.res.end();
  }

  /** The call is over (answered, or failed): a resuming GET finds its events in the log, no longer the stream. */
  release(): void {
    if (!this.record) return;
    this.resumable?.live.delete(this.record.stream);
    this.record.log.end(this.record.stream);
  }

  private open(): SseWriter {
    if (this.writer) return this.writer;
    if (this.resumable) {
      this.record = { log: this.resumable.log, stream: this.resumable.log.newStream() };
      this.resumable.live.set(this.record.stream, this);
    }
    const writer = new SseWriter(this.res, this.headers, this.record);
    writer.prime();
    writer.onClose = () => this.detach();
    this.writer = writer;
    return writer;
  }

  private detach(): void {
    if (!this.done && this.resumable) this.detached = true;
  }
}
