import { randomUUID } from 'node:crypto';
import { principalFields } from '../audit/audit-log.js';
import { BehalfError, toBehalfError } from '../errors.js';
import { errorResponse, isRequest, RpcCode, type JsonRpcMessage, type JsonRpcResponse } from '../jsonrpc.js';
import { authorizeMessage, filterListResult } from './authorize.js';
import type { RequestContext } from './context.js';
import type { GatewaySession } from './session.js';

/** The one message a denied call gets back: fixed, so nothing about the rules leaks. */
const DENIED = 'Forbidden: not allowed for this user';

/**
 * Decides, audits and forwards one client→server message on a session.
 * Order matters: the decision is written to the audit log before anything
 * reaches the upstream, and a failed write refuses the call (fail closed).
 * Returns the JSON-RPC response for requests, undefined otherwise.
 */
export async function dispatchMessage(ctx: RequestContext, session: GatewaySession, msg: JsonRpcMessage): Promise<JsonRpcResponse | undefined> {
  const { rt, route } = ctx;
  const principal = ctx.principal!;
  const started = performance.now();
  const callId = randomUUID();
  const method = 'method' in msg ? msg.method : 'response';
  const authz = authorizeMessage(rt.rules, principal, route.name, ctx.transport, msg, route.upstream.forwardClientRoots);
  const base = {
    callId, route: route.name, upstream: route.name, transport: ctx.transport,
    sessionFingerprint: session.fingerprint, method, target: authz.target,
    downstreamStrategy: route.downstreamStrategy,
    ...principalFields(principal),
  };
  const request = isRequest(msg) ? msg : undefined;
  try {
    rt.audit.mustAppend({ ts: Date.now(), kind: 'decision', ...base, decision: authz.effect, ruleIds: authz.ruleIds, reason: authz.reason });
  } catch (err) {
    return request ? errorResponse(request.id, RpcCode.InternalError, toBehalfError(err).publicMessage) : undefined;
  }
  if (authz.effect === 'deny') return request ? errorResponse(request.id, RpcCode.Forbidden, DENIED) : undefined;

  if (!request) {
    await session.upstream.send(msg).catch(() => {});
    return undefined;
  }
  let response: JsonRpcResponse;
  let outcome: string;
  try {
    response = await session.upstream.request(request);
    outcome = 'error' in response ? `error ${response.error.code}` : 'ok';
    if (authz.listFeature && 'result' in response) {
      response = { ...response, result: filterListResult(rt.rules, principal, route.name, ctx.transport, method, authz.listFeature, response.result) };
    }
  } catch (err) {
    const e = toBehalfError(err);
    response = errorResponse(request.id, RpcCode.UpstreamError, e.publicMessage);
    outcome = e.code;
  }
  rt.audit.tryAppend({ ts: Date.now(), kind: 'outcome', ...base, outcome, latencyMs: performance.now() - started });
  return response;
}

/** Forwards `initialize` and remembers what was negotiated, so the upstream transport speaks the same version. */
export async function dispatchInitialize(ctx: RequestContext, session: GatewaySession, msg: JsonRpcMessage): Promise<JsonRpcResponse> {
  const response = await dispatchMessage(ctx, session, ctx.route.upstream.forwardClientRoots ? msg : withoutRootsCapability(msg));
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
