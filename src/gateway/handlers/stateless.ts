import { principalKey } from '../../identity/principal.js';
import { isRequest, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import { decideMessage, deliverMessage, dispatchMessage } from '../message/pipeline.js';
import { UPSTREAM_INIT_VERSION, STATELESS_VERSIONS } from '../protocol.js';
import { createSession, endSession } from '../session-binding.js';
import type { GatewaySession } from '../session.js';
import { noteUpstreamFailure } from '../stateless/upstream-era.js';
import { StatelessReply } from '../stateless/reply.js';
import { answerStatelessRequest } from '../stateless/answer-bridged.js';
import { bridgedUpstreamCapabilities } from '../stateless/input-capabilities.js';

/**
 * Stateless (2026-07-28) requests to an upstream of the 2025 era: the gateway
 * keeps one upstream connection per (route, principal) that it initialized
 * itself, so such upstreams serve stateless clients, and no two principals
 * share a connection. (An upstream that speaks 2026-07-28 gets each request
 * as it is: src/gateway/stateless/.)
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
      supportedVersions: [...STATELESS_VERSIONS],
      capabilities: init.capabilities ?? {},
      ...(typeof init.instructions === 'string' ? { instructions: init.instructions } : {}),
      _meta: { 'io.modelcontextprotocol/serverInfo': init.serverInfo ?? { name: 'behalf', version: '0.1.0' } },
      resultType: 'complete',
      ttlMs: 0,
      cacheScope: 'private',
    },
  };
}

/** One stateless request on the principal's bridged session; `server/discover` is decided and recorded, then answered here. */
export async function answerBridged(ctx: RequestContext, msg: JsonRpcMessage): Promise<void> {
  const session = await statelessSession(ctx);
  ctx.session = session;
  const reply = new StatelessReply(ctx.res);
  session.inFlight++;
  try {
    let response: JsonRpcResponse | undefined;
    if (isRequest(msg) && msg.method === 'server/discover') {
      const m = await decideMessage(ctx, session, msg);
      response = m.refusal ? await deliverMessage(m) : discoverResponse(session, msg);
    } else {
      // A call the upstream interrupts to ask the client something becomes an input-required result (stateless/).
      response = isRequest(msg)
        ? await answerStatelessRequest(ctx, session, msg)
        : await dispatchMessage(ctx, session, msg);
      noteUpstreamFailure(ctx, response);
    }
    reply.finish(response && isRequest(msg) ? toStatelessResponse(msg.method, response) : response);
  } finally {
    session.inFlight--;
    session.lastSeen = Date.now();
  }
}

/** Results of these methods carry cache fields on 2026-07-28 (`CacheableResult`). */
const CACHEABLE_METHODS = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/**
 * A result in its 2026-07-28 wire form: every result carries `resultType`
 * (2.x clients reject results without it), and cacheable results carry
 * `ttlMs: 0, cacheScope: "private"` — whatever the upstream said, because
 * lists are filtered per user and the policy may change. Errors pass unchanged.
 */
export function toStatelessResponse(method: string, response: JsonRpcResponse): JsonRpcResponse {
  if (!('result' in response)) return response;
  const result: Record<string, unknown> = { resultType: 'complete', ...response.result };
  if (CACHEABLE_METHODS.has(method)) Object.assign(result, { ttlMs: 0, cacheScope: 'private' });
  return { ...response, result };
}
