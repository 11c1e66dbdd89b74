import { AsyncLocalStorage } from 'node:async_hooks';
import type { JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.js';
import type { MessageContext } from '../gateway/message/context.js';

/**
 * The W3C trace headers of the call being forwarded. The HTTP upstream
 * transport reads them where it reads the call's credential
 * (src/gateway/upstream/factory.ts), so each upstream request names the
 * forward span of its own call, even with several calls in flight on one
 * connection.
 */
export const callTraceHeaders = new AsyncLocalStorage<Record<string, string> | undefined>();

/**
 * Sends a forwarded request with its trace context: HTTP upstreams get
 * `traceparent`/`tracestate` headers; a stdio upstream gets them in
 * `params._meta`, as the MCP semantic conventions propagate context, only
 * when `operations.tracing.stdioMeta` allows it and the request already has a
 * params object — `_meta` is open to any key by the MCP schema, but a params
 * object where the method takes none could be refused by a strict server.
 */
export function sendTraced(
  m: MessageContext,
  req: JsonRpcRequest,
  send: (req: JsonRpcRequest) => Promise<JsonRpcResponse>,
): Promise<JsonRpcResponse> {
  const span = m.outboundTrace;
  if (!span) return send(req);
  const headers = span.headers();
  const { rt, route } = m.http;
  if (route.upstream.transport !== 'stdio') return callTraceHeaders.run(headers, () => send(req));
  const params = req.params;
  if (
    !rt.config.operations.tracing?.stdioMeta ||
    typeof params !== 'object' ||
    params === null ||
    Array.isArray(params)
  )
    return send(req);
  const meta = (params as { _meta?: Record<string, unknown> })._meta;
  return send({ ...req, params: { ...params, _meta: { ...meta, ...headers } } });
}
