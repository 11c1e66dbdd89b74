import { BehalfError } from '../../errors.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import type { GatewaySession } from '../session.js';
import { dispatchMessage } from './pipeline.js';

/**
 * The upstream is told the client has no roots unless the route forwards
 * them, so a compliant server never asks the agent to define its sandbox.
 */
function withoutRootsCapability(msg: JsonRpcMessage): JsonRpcMessage {
  const params = 'params' in msg ? msg.params : undefined;
  const caps = params?.capabilities as Record<string, unknown> | undefined;
  if (!caps || !('roots' in caps)) return msg;
  const { roots: _roots, ...rest } = caps;
  return { ...msg, params: { ...params, capabilities: rest } } as JsonRpcMessage;
}

/** The initialize this route forwards for the client's own. */
export function initializeToForward(ctx: RequestContext, msg: JsonRpcMessage): JsonRpcMessage {
  return ctx.route.upstream.forwardClientRoots ? msg : withoutRootsCapability(msg);
}

/** Forwards `initialize` through the message pipeline and remembers what was negotiated, so the upstream transport speaks the same version. */
export async function dispatchInitialize(
  ctx: RequestContext,
  session: GatewaySession,
  msg: JsonRpcMessage,
): Promise<JsonRpcResponse> {
  const response = await dispatchMessage(ctx, session, initializeToForward(ctx, msg));
  if (!response) throw new BehalfError('invalid_request', 'initialize must be a request');
  if ('result' in response) {
    const v = response.result.protocolVersion;
    if (typeof v === 'string') {
      session.protocolVersion = v;
      session.upstream.setProtocolVersion(v);
    }
    session.initializeResult = response.result;
  }
  return response;
}
