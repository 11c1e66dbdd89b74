import { BehalfError, toJsonRpcError } from '../errors.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { GatewaySession } from './session.js';
import type { UpstreamConnection } from './upstream/connection.js';

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

/** Server→client traffic goes to a streaming POST response of this session, else its GET stream. */
export function deliverToClient(session: GatewaySession, msg: JsonRpcMessage, log: (line: string) => void): void {
  // The GET stream is the client's chosen channel for server-initiated messages; else the newest in-flight POST.
  const sink = session.stream && !session.stream.isClosed ? session.stream : [...session.postStreams].pop();
  if (sink && !sink.isClosed) {
    sink.message(msg);
    return;
  }
  if ('id' in msg && 'method' in msg)
    refuseUpstreamRequest(session.upstream, msg.id, new BehalfError('no_client_stream'), log);
  // A notification with no stream to carry it is dropped: MCP has no way to deliver it later.
}
