import { BehalfError } from '../../errors.js';
import { invalidMessageReason, type JsonRpcMessage } from '../../jsonrpc.js';
import { headerValue, readBody } from '../http-io.js';
import { checkJsonBounds } from '../json-bounds.js';
import { PROTOCOL_VERSION_META_KEY, SUPPORTED_VERSIONS } from '../protocol.js';
import type { Step } from '../context.js';

export const checkHost: Step = {
  name: 'check_host',
  why: 'first: a DNS-rebinding page must learn nothing, not even whether it is authenticated',
  run(ctx) {
    const host = headerValue(ctx.req, 'host')?.toLowerCase();
    if (!host || !ctx.rt.allowedHosts.has(host)) throw new BehalfError('host_not_allowed');
  },
};

export const checkOrigin: Step = {
  name: 'check_origin',
  why: "browsers send Origin; a foreign page must not drive the gateway with the user's ambient reachability",
  run(ctx) {
    const origin = headerValue(ctx.req, 'origin');
    if (origin !== undefined && !ctx.rt.allowedOrigins.has(origin.toLowerCase()))
      throw new BehalfError('origin_not_allowed');
  },
};

export const checkProtocolVersionHeader: Step = {
  name: 'check_protocol_version',
  why: 'an unknown revision is refused before any work, as the transport spec requires; on the MCP endpoint a POST is refused after its body is parsed instead, so the 2026-07-28 UnsupportedProtocolVersionError can answer its request id (check_stateless_request)',
  run(ctx) {
    const v = headerValue(ctx.req, 'mcp-protocol-version');
    const deferred = ctx.endpoint === 'mcp' && ctx.req.method === 'POST';
    if (v !== undefined && !SUPPORTED_VERSIONS.has(v) && !deferred)
      throw new BehalfError('unsupported_protocol_version');
    ctx.protocolVersion = v;
  },
};

export const checkPostHeaders: Step = {
  name: 'check_post_headers',
  why: 'method/body consistency, from headers alone: only JSON bodies are read, and only by an authenticated caller',
  run(ctx) {
    const type = headerValue(ctx.req, 'content-type') ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) throw new BehalfError('unsupported_media_type');
    const accept = headerValue(ctx.req, 'accept');
    if (ctx.endpoint === 'mcp' && accept && !/application\/json|text\/event-stream|\*\/\*/i.test(accept))
      throw new BehalfError('not_acceptable');
  },
};

export const readLimitedBody: Step = {
  name: 'read_body',
  why: "after authentication, so a caller who proved no one costs no body bytes; under the client's size cap, the body deadline and the gateway's buffered-body budget",
  async run(ctx) {
    const { limits, config } = ctx.rt;
    ctx.bodyStarted = true;
    const hold = limits.bodies.hold();
    // Given back when the request is over: what the parsed body became is held until then too.
    ctx.res.once('close', hold.release);
    ctx.body = await readBody(ctx.req, {
      limit: limits.maxBodyBytesOf(ctx.principal?.client.id),
      timeoutMs: config.server.bodyTimeoutMs,
      hold,
    });
  },
};

export const parseJsonRpc: Step = {
  name: 'parse_jsonrpc',
  why: 'depth and key count are bounded before JSON.parse builds anything; malformed input is refused as a parse error or an invalid request, and nothing is forwarded',
  run(ctx) {
    const { maxJsonDepth, maxJsonKeys } = ctx.rt.config.server;
    checkJsonBounds(ctx.body!, maxJsonDepth, maxJsonKeys);
    let parsed: unknown;
    try {
      parsed = JSON.parse(ctx.body!.toString('utf8'));
    } catch {
      throw new BehalfError('parse_error');
    }
    const list = Array.isArray(parsed) ? parsed : [parsed];
    if (list.length === 0) throw new BehalfError('invalid_request', 'Invalid JSON-RPC request: empty batch');
    if (list.length > 100) throw new BehalfError('invalid_request', 'Invalid JSON-RPC request: batch too large');
    for (const m of list) {
      const bad = invalidMessageReason(m);
      if (bad) throw new BehalfError('invalid_request', `Invalid JSON-RPC request: ${bad}`);
    }
    ctx.messages = list as JsonRpcMessage[];
    ctx.isBatch = Array.isArray(parsed);
    if (!ctx.protocolVersion) {
      const first = list[0] as { params?: { _meta?: Record<string, unknown> } };
      const metaVersion = first.params?._meta?.[PROTOCOL_VERSION_META_KEY];
      if (typeof metaVersion === 'string') {
        // The MCP endpoint judges the version with the other stateless checks, answering this request's id.
        if (!SUPPORTED_VERSIONS.has(metaVersion) && ctx.endpoint !== 'mcp')
          throw new BehalfError('unsupported_protocol_version');
        ctx.protocolVersion = metaVersion;
      }
    }
  },
};
