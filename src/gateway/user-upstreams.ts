import { principalKey, type Principal } from '../identity/principal.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.js';
import {
  LATEST_INIT_RESULT_VERSION,
  STATELESS_VERSION,
  SUPPORTED_VERSIONS,
  UPSTREAM_INIT_VERSION,
} from './protocol.js';
import type { RequestContext } from './context.js';
import { inboundOf, type Route } from './route.js';
import { BehalfError } from '../errors.js';
import { deliverToClient, refuseUpstreamRequest } from './deliver.js';
import type { GatewaySession } from './session.js';
import type { UpstreamConnection } from './upstream/connection.js';
import { connectUpstream } from './upstream/factory.js';

/**
 * On a route that takes the user from each message (signed user context),
 * one agent session carries many users. Each user gets an upstream
 * connection of her own within the session — opened, initialized and
 * credentialed by the gateway for her — so no upstream session state and no
 * upstream session binding is ever shared between two users.
 */
export function takesMessageUsers(route: Route): boolean {
  return inboundOf(route).includes('signed-context');
}

/** The connection a message goes to: the session's own, or, for a user who arrived in the message, hers. */
export async function upstreamFor(
  ctx: RequestContext,
  session: GatewaySession,
  principal: Principal,
): Promise<UpstreamConnection> {
  if (!takesMessageUsers(ctx.route) || !principal.user || principalKey(principal) === session.boundTo)
    return session.upstream;
  const key = principalKey(principal);
  session.userUpstreams ??= new Map();
  const entry = session.userUpstreams.get(key);
  if (entry) {
    entry.principal = principal;
    return entry.connection;
  }
  // The promise is stored at once, so concurrent first calls of one user share one connection.
  const slot = { principal, connection: openFor(ctx, session, key) };
  session.userUpstreams.set(key, slot);
  try {
    return await slot.connection;
  } catch (err) {
    session.userUpstreams.delete(key);
    throw err;
  }
}

async function openFor(ctx: RequestContext, session: GatewaySession, key: string): Promise<UpstreamConnection> {
  const { rt, route } = ctx;
  const strategy = rt.delegation.get(route.name);
  // Its own traffic (initialize, notifications) carries this user's credential, from her latest message.
  const current = () => session.userUpstreams?.get(key)?.principal;
  const credential =
    strategy &&
    (async () => {
      const p = current();
      return p ? strategy.credentialFor({ principal: p, upstream: route.name }) : undefined;
    });
  const upstream = connectUpstream(route.name, route.upstream, rt.upstreamContext, credential);
  upstream.onServerMessage = (m, related) => {
    // The agent's answers come back on the session, not per user: an upstream request here is refused, notifications pass.
    if ('id' in m && 'method' in m) {
      refuseUpstreamRequest(upstream, m.id, new BehalfError('not_available_here'), rt.log);
      return;
    }
    deliverToClient(session, m, rt.log, related);
  };
  upstream.onClose = () => session.userUpstreams?.delete(key);
  await upstream.start();
  try {
    await upstream.initializeAsGateway(initVersion(session.protocolVersion, UPSTREAM_INIT_VERSION));
  } catch (err) {
    await upstream.close();
    throw err;
  }
  return upstream;
}

/** A version an `initialize` can use: one we support from the session era (not the stateless one), else the fallback. */
function initVersion(asked: unknown, fallback: string): string {
  return typeof asked === 'string' && SUPPORTED_VERSIONS.has(asked) && asked !== STATELESS_VERSION ? asked : fallback;
}

export function closeUserUpstreams(session: GatewaySession): void {
  // A connection that never opened has nothing to close; its failure was already the answer to the call that opened it.
  for (const { connection } of session.userUpstreams?.values() ?? [])
    void connection.then(
      (c) => c.close(),
      () => undefined,
    );
  session.userUpstreams?.clear();
}

/**
 * A session of such a route has no user of its own: its initialize and
 * housekeeping are answered by the gateway (no upstream would serve them
 * without a user), with the capabilities a proxied MCP server may have.
 */
export function localAnswer(req: JsonRpcRequest): JsonRpcResponse {
  if (req.method !== 'initialize') return { jsonrpc: '2.0', id: req.id, result: {} };
  const protocolVersion = initVersion(
    (req.params as { protocolVersion?: unknown } | undefined)?.protocolVersion,
    LATEST_INIT_RESULT_VERSION,
  );
  return {
    jsonrpc: '2.0',
    id: req.id,
    result: {
      protocolVersion,
      capabilities: { tools: { listChanged: false }, resources: {}, prompts: {}, completions: {} },
      serverInfo: { name: 'behalf', version: '0.1.0' },
      instructions: 'Each call must carry a signed user context in _meta["behalf/user"].',
    },
  };
}
