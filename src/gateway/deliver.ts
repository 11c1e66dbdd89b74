import { BehalfError, toJsonRpcError } from '../errors.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { GatewaySession } from './session.js';
import type { UpstreamConnection } from './upstream/connection.js';
import type { RelatedSink } from './upstream/transport.js';

/**
 * Answers an upstream's request the gateway will not route (roots it was
 * never offered, requests on per-user connections, no client stream). Best
 * effort: if the upstream is gone there is nobody to tell, and its
 * connection closes on its own.
 */
export function refuseUpstreamRequest(
  upstream: UpstreamConnection,
  id: string | number,
  error: BehalfError,
  log: (line: string) => void,
): void {
  void upstream
    .send(toJsonRpcError(error, id))
    .catch((err: unknown) =>
      log(`could not refuse an upstream request: ${error.code} (${String((err as Error)?.name)})`),
    );
}

/**
 * Server→client traffic about a call goes on that call's own stream, so it
 * arrives before the call's response; anything else to the session's GET
 * stream, else the newest POST response still streaming.
 */
export function deliverToClient(
  session: GatewaySession,
  msg: JsonRpcMessage,
  log: (line: string) => void,
  related?: RelatedSink,
): void {
  const sink =
    related && !related.isClosed
      ? related
      : session.stream && !session.stream.isClosed
        ? session.stream
        : [...session.postStreams].pop();
  if (sink && !sink.isClosed) {
    sink.message(msg);
    return;
  }
  if ('id' in msg && 'method' in msg)
    refuseUpstreamRequest(session.upstream, msg.id, new BehalfError('no_client_stream'), log);
  // A notification with no stream to carry it is dropped: MCP has no way to deliver it later.
}
