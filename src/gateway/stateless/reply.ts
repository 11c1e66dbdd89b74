import type { ServerResponse } from 'node:http';
import { RPC } from '../../errors.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../../jsonrpc.js';
import { sendJson } from '../http-io.js';
import { SseWriter } from '../sse-writer.js';
import type { RelatedSink } from '../upstream/transport.js';

/**
 * The HTTP status of a 2026-07-28 answer that is this JSON-RPC error: the
 * transport gives these errors their own statuses (404 for a method the
 * server does not serve, 400 for the header, capability and version errors);
 * any other error is an ordinary 200 answer.
 */
function statelessHttpStatus(rpc: number): number {
  if (rpc === RPC.MethodNotFound) return 404;
  if (
    rpc === RPC.HeaderMismatch ||
    rpc === RPC.MissingRequiredClientCapability ||
    rpc === RPC.UnsupportedProtocolVersion
  )
    return 400;
  return 200;
}

/**
 * The answer to one stateless POST: one JSON body, unless the upstream sends
 * something about the request first (progress, log messages), which turns it
 * into an SSE stream ending with the response. A JSON error answer gets the
 * HTTP status 2026-07-28 gives its code (404 method not found, 400 header,
 * capability and version errors); a notification is acknowledged with 202.
 */
export class StatelessReply implements RelatedSink {
  private writer?: SseWriter;
  private done = false;

  constructor(private readonly res: ServerResponse) {}

  get isClosed(): boolean {
    return this.done || (this.writer?.isClosed ?? false);
  }

  /** The SSE stream, opened now if it is not yet (a listen stream opens at once). */
  stream(): SseWriter {
    this.writer ??= new SseWriter(this.res);
    return this.writer;
  }

  message(msg: JsonRpcMessage): void {
    if (this.done) return;
    this.stream().message(msg);
  }

  finish(response: JsonRpcResponse | undefined): void {
    if (this.done) return;
    this.done = true;
    if (this.writer) {
      if (response) this.writer.message(response);
      this.writer.close();
    } else if (!response) {
      this.res.writeHead(202).end();
    } else {
      sendJson(this.res, 'error' in response ? statelessHttpStatus(response.error.code) : 200, response);
    }
  }
}
