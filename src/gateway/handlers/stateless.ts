import { principalKey } from '../../identity/principal.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import { UPSTREAM_INIT_VERSION, STATELESS_VERSION } from '../protocol.js';
import { createSession, endSession } from '../session-binding.js';
import type { GatewaySession } from '../session.js';
import { bridgedUpstreamCapabilities } from '../stateless/input-capabilities.js';

/**
 * Stateless (2026-07-28) requests carry no session: the gateway keeps one
 * upstream connection per (route, principal) that it initialized itself, so
 * upstreams of the 2025 era serve stateless clients, and no two principals
 * share a connection.
 */
export async function statelessSession(ctx: RequestContext): Promise<GatewaySession> {
  const key = `${ctx.route.name}\0${principalKey(ctx.principal!)}`;
  const existing = ctx.rt.stateless.get(key);
  if (existing && !existing.upstream.isClosed) {
    existing.lastSeen = Date.now();
    existing.principal = ctx.principal!;
    return existing;
  }
  const session = await createSession(ctx, 'stateless');
  try {
    // It declares what the gateway can bridge to stateless clients as input-required results (src/gateway/stateless/).
    session.initializeResult = await session.upstream.initializeAsGateway(
      UPSTREAM_INIT_VERSION,
      bridgedUpstreamCapabilities(ctx.route),
    );
  } catch (err) {
    endSession(ctx.rt, session, 'stateless initialize failed');
    throw err;
  }
  ctx.rt.stateless.set(key, session);
  return session;
}

/** `server/discover` is answered from what the upstream said at initialize. */
export function discoverResponse(session: GatewaySession, req: JsonRpcRequest): JsonRpcResponse {
  const init = session.initializeResult ?? {};
  return {
    jsonrpc: '2.0',
    id: req.id,
    result: {
      supportedVersions: [STATELESS_VERSION],
      capabilities: init.capabilities ?? {},
      ...(typeof init.instructions === 'string' ? { instructions: init.instructions } : {}),
      _meta: { 'io.modelcontextprotocol/serverInfo': init.serverInfo ?? { name: 'behalf', version: '0.1.0' } },
      resultType: 'complete',
      ttlMs: 0,
      cacheScope: 'private',
    },
  };
}

/** Results of these methods carry cache fields on 2026-07-28 (`CacheableResult`). */
const CACHEABLE_METHODS = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/**
 * Turns a 2025-era upstream result into its 2026-07-28 wire form: every
 * result carries `resultType` (2.x clients reject results without it), and
 * cacheable results carry `ttlMs`/`cacheScope` — `private` with no lifetime,
 * because lists are filtered per user. Errors pass unchanged.
 */
export function toStatelessResponse(method: string, response: JsonRpcResponse): JsonRpcResponse {
  if (!('result' in response)) return response;
  const result: Record<string, unknown> = { resultType: 'complete', ...response.result };
  if (CACHEABLE_METHODS.has(method)) Object.assign(result, { ttlMs: 0, cacheScope: 'private' });
  return { ...response, result };
}
