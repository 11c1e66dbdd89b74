import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { principalKey } from '../../identity/principal.js';
import { sessionFingerprint } from '../../state/sessions.js';
import type { RequestContext } from '../context.js';
import { STATELESS_VERSION } from '../protocol.js';
import type { GatewaySession } from '../session.js';
import { ToolCatalog } from '../tool-catalog.js';
import { UpstreamConnection } from '../upstream/connection.js';
import { StatelessHttpTransport, type StatelessTarget } from './native-transport.js';

/** The client's `Mcp-Param-*` headers: an intermediary forwards them to the server that validates them. */
function paramHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (name.startsWith('mcp-param-') && typeof value === 'string') out[name] = value;
  return out;
}

const transports = new WeakMap<GatewaySession, StatelessHttpTransport>();

/** A session made for one request to an upstream that speaks 2026-07-28 (not the bridge's kept 2025-era connection). */
export function isNativeSession(session: GatewaySession): boolean {
  return transports.has(session);
}

/** The transport of a native session, for what is not a call (a listen stream). */
export function nativeTransportOf(session: GatewaySession): StatelessHttpTransport | undefined {
  return transports.get(session);
}

/**
 * One stateless request to an upstream that speaks 2026-07-28 has no session
 * anywhere: the gateway makes a session object for this request only, so the
 * message pipeline decides, credentials, forwards and records it as any
 * other, on a connection of its own that carries this principal's downstream
 * credential. Nothing of it outlives the request; it is not in the session
 * store and counts against no quota, because it holds nothing.
 */
export function nativeSession(ctx: RequestContext, target: StatelessTarget): GatewaySession {
  const { rt, route } = ctx;
  const principal = ctx.principal!;
  const strategy = rt.delegation.get(route.name);
  const credential = strategy && (() => strategy.credentialFor({ principal, upstream: route.name }));
  const transport = new StatelessHttpTransport(target, credential, paramHeaders(ctx.req));
  const upstream = new UpstreamConnection(transport, route.upstream.requestTimeoutMs);
  upstream.onServerMessage = (msg, related) => {
    // 2026-07-28 servers send no requests on a response stream (MRTR replaces them): only notifications pass.
    if ('id' in msg) return;
    if (related && !related.isClosed) related.message(msg);
  };
  const id = `stateless-${randomUUID()}`;
  const now = Date.now();
  const session: GatewaySession = {
    id,
    fingerprint: sessionFingerprint(id),
    routeName: route.name,
    boundTo: principalKey(principal),
    principal,
    createdAt: now,
    lastSeen: now,
    kind: 'stateless',
    upstream,
    postStreams: new Set(),
    liveStreams: new Map(),
    // No event log: a 2026-07-28 stream is not resumable, so nothing is kept to replay.
    standaloneStream: '',
    inFlight: 0,
    tools: new ToolCatalog(upstream),
    protocolVersion: STATELESS_VERSION,
  };
  transports.set(session, transport);
  return session;
}
