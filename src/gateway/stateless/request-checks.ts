import { BehalfError } from '../../errors.js';
import { isRequest, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest } from '../../jsonrpc.js';
import type { RequestContext, Step } from '../context.js';
import { headerValue } from '../http-io.js';
import {
  CLIENT_CAPABILITIES_META_KEY,
  MCP_NAME_FIELD,
  PROTOCOL_VERSION_META_KEY,
  REMOVED_STATELESS_METHODS,
  STATELESS_VERSION,
  STATELESS_VERSIONS,
  SUPPORTED_VERSIONS,
} from '../protocol.js';
import { sessionIdHeader } from '../session-binding.js';
import { decodeHeaderValue } from './header-values.js';

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function metaOf(msg: JsonRpcMessage): Record<string, unknown> | undefined {
  return 'method' in msg ? obj(obj(msg.params)?._meta) : undefined;
}

/**
 * Whether a POST without a session speaks the stateless revision: it names
 * 2026-07-28 in its header, carries a protocol version in its `_meta` (only
 * stateless requests do), or names a version the gateway does not know —
 * which is answered the 2026-07-28 way, with the versions it does.
 */
function isStateless(ctx: RequestContext, header: string | undefined): boolean {
  if (sessionIdHeader(ctx) !== undefined) return false;
  if (header === STATELESS_VERSION) return true;
  if (header !== undefined && !SUPPORTED_VERSIONS.has(header)) return true;
  const first = ctx.messages?.[0];
  return first !== undefined && metaOf(first)?.[PROTOCOL_VERSION_META_KEY] !== undefined;
}

function unsupported(requested: string): BehalfError {
  return new BehalfError(
    'unsupported_protocol_version',
    undefined,
    {},
    {
      data: { supported: [...STATELESS_VERSIONS], requested },
    },
  );
}

/** `Mcp-Method` and `Mcp-Name` must mirror the body exactly (values are case-sensitive; Node trims the whitespace around them). */
function checkMirroredHeaders(ctx: RequestContext, msg: JsonRpcRequest | JsonRpcNotification, required: boolean): void {
  const method = headerValue(ctx.req, 'mcp-method');
  if (method === undefined) {
    if (required) throw new BehalfError('header_mismatch', 'Header mismatch: Mcp-Method header required');
  } else if (method !== msg.method) {
    throw new BehalfError('header_mismatch', 'Header mismatch: Mcp-Method header does not match the body method');
  }
  const field = MCP_NAME_FIELD[msg.method];
  const name = headerValue(ctx.req, 'mcp-name');
  const bodyValue = field ? obj(msg.params)?.[field] : undefined;
  if (typeof bodyValue !== 'string') {
    // A name header with nothing in the body to mirror did not come from this request.
    if (field && name !== undefined)
      throw new BehalfError('header_mismatch', 'Header mismatch: Mcp-Name header without a name in the body');
    return;
  }
  if (name === undefined) throw new BehalfError('header_mismatch', 'Header mismatch: Mcp-Name header required');
  if (decodeHeaderValue(name) !== bodyValue)
    throw new BehalfError('header_mismatch', `Header mismatch: Mcp-Name header does not match the body's ${field}`);
}

/**
 * The MUSTs of a stateless (2026-07-28) request, in the order the reference
 * server applies them: the version header, the request's `_meta`, header and
 * `_meta` agreeing, a version served, the mirrored method and name headers,
 * and no method the revision removed. A session-era request with a version
 * the gateway does not serve is refused here too, now that its id is known.
 */
export function checkStatelessRequest(ctx: RequestContext): void {
  const header = headerValue(ctx.req, 'mcp-protocol-version');
  if (!isStateless(ctx, header)) {
    if (header !== undefined && !SUPPORTED_VERSIONS.has(header)) throw unsupported(header);
    return;
  }
  const msgs = ctx.messages!;
  if (ctx.isBatch || msgs.length !== 1)
    throw new BehalfError(
      'batch_not_supported',
      `Invalid JSON-RPC request: batches are not supported in protocol version ${STATELESS_VERSION}`,
    );
  const msg = msgs[0]!;
  if (!('method' in msg))
    throw new BehalfError('invalid_request', 'Invalid JSON-RPC request: a client sends no responses in 2026-07-28');
  const request = isRequest(msg);
  if (header === undefined)
    throw new BehalfError('header_mismatch', 'Header mismatch: MCP-Protocol-Version header required');
  const meta = metaOf(msg);
  const metaVersion = meta?.[PROTOCOL_VERSION_META_KEY];
  if (!SUPPORTED_VERSIONS.has(header) && (metaVersion === undefined || metaVersion === header))
    throw unsupported(header);
  if (request && (!meta || metaVersion === undefined || obj(meta[CLIENT_CAPABILITIES_META_KEY]) === undefined))
    throw new BehalfError('request_meta_invalid');
  if (metaVersion !== undefined && metaVersion !== header)
    throw new BehalfError('header_mismatch', 'Header mismatch: MCP-Protocol-Version header does not match _meta');
  if (header !== STATELESS_VERSION) throw unsupported(header);
  checkMirroredHeaders(ctx, msg, request);
  if (REMOVED_STATELESS_METHODS.has(msg.method))
    throw new BehalfError('method_not_found', `Method not found: ${msg.method} was removed in ${STATELESS_VERSION}`);
  ctx.protocolVersion = STATELESS_VERSION;
}

export const checkStatelessRequestStep: Step = {
  name: 'check_stateless_request',
  why: "after the body is parsed, so every refusal answers the request's id; before the handler, so nothing malformed reaches a session or an upstream — the gateway is the server its clients see and enforces the 2026-07-28 MUSTs itself",
  run: checkStatelessRequest,
};
