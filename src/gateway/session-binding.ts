import { SessionEventLog } from './event-log.js';
import { fleetEventMirror } from './fleet-event-log.js';
import { principalFields } from '../audit/audit-log.js';
import { BehalfError, describeError } from '../errors.js';
import { principalKey } from '../identity/principal.js';
import { sessionFingerprint, type SessionSlot } from '../state/sessions.js';
import type { RequestContext } from './context.js';
import { headerValue } from './http-io.js';
import type { GatewaySession } from './session.js';
import { ToolCatalog } from './tool-catalog.js';
import { closeUserUpstreams } from './user-upstreams.js';
import { deliverToClient, refuseUpstreamRequest } from './deliver.js';
import type { DownstreamStrategy } from '../delegation/types.js';
import { connectUpstream, type ChildUser } from './upstream/factory.js';

/**
 * Opens a session bound to the current principal, with its own upstream
 * connection (nothing is shared across users). It is charged to her quota
 * before anything is started, so a refused session costs no upstream.
 */
export async function createSession(
  ctx: RequestContext,
  kind: GatewaySession['kind'],
  continued?: ContinuedSession,
): Promise<GatewaySession> {
  const { rt, route } = ctx;
  // A stdio route's process caps come first: at her cap there, her least recently used child goes, freeing a slot too.
  if (route.upstream.transport === 'stdio') enforceProcessCaps(ctx);
  const slot = rt.sessions.reserve(ctx.principal!, { stream: kind === 'legacy-sse' });
  try {
    return await openSession(ctx, kind, slot, continued);
  } finally {
    rt.sessions.release(slot);
  }
}

/** A fleet's session another instance opened, served here: its id and its upstream's side (fleet-sessions.ts). */
export interface ContinuedSession {
  id: string;
  createdAt: number;
  upstreamSessionId?: string;
  protocolVersion?: string;
}

async function openSession(
  ctx: RequestContext,
  kind: GatewaySession['kind'],
  slot: SessionSlot,
  continued: ContinuedSession | undefined,
) {
  const { rt, route } = ctx;
  const strategy = rt.delegation.get(route.name);
  const opened: { session?: GatewaySession } = {};
  let upstream;
  if (route.upstream.transport === 'stdio') {
    upstream = connectUpstream(
      route.name,
      route.upstream,
      rt.upstreamContext,
      undefined,
      await childUser(ctx, strategy),
    );
  } else {
    // The connection's own traffic (initialize, the GET stream) carries the credential of the session's current principal.
    const credential =
      strategy &&
      (() => strategy.credentialFor({ principal: opened.session?.principal ?? ctx.principal!, upstream: route.name }));
    upstream = connectUpstream(route.name, route.upstream, rt.upstreamContext, credential);
  }
  await upstream.start();
  if (continued) upstream.continueSession(continued.upstreamSessionId, continued.protocolVersion);
  const id = continued?.id ?? rt.sessions.newId();
  const now = Date.now();
  const events =
    kind === 'streamable' && rt.config.sessions.resumeEvents > 0
      ? new SessionEventLog(rt.config.sessions.resumeEvents, rt.config.sessions.resumeBytes, fleetEventMirror(ctx, id))
      : undefined;
  const session: GatewaySession = {
    id,
    fingerprint: sessionFingerprint(id),
    routeName: route.name,
    boundTo: principalKey(ctx.principal!),
    principal: ctx.principal!,
    createdAt: continued?.createdAt ?? now,
    lastSeen: now,
    kind,
    ...(continued?.protocolVersion ? { protocolVersion: continued.protocolVersion } : {}),
    upstream,
    postStreams: new Set(),
    liveStreams: new Map(),
    // The standalone stream's key, constant across reconnections (POST streams count from s1).
    standaloneStream: events?.standaloneStream ?? 's0',
    ...(events ? { events } : {}),
    inFlight: 0,
    tools: new ToolCatalog(upstream),
  };
  opened.session = session;
  if (route.upstream.transport === 'stdio' && route.upstream.perUser.idleTimeoutSeconds)
    session.idleTtlMs = route.upstream.perUser.idleTimeoutSeconds * 1000;
  upstream.onServerMessage = (m, related) => {
    // A server that asks for roots it was never offered gets none: the agent must not define an upstream's sandbox.
    if ('id' in m && 'method' in m && m.method === 'roots/list' && !route.upstream.forwardClientRoots) {
      refuseUpstreamRequest(
        upstream,
        m.id,
        new BehalfError('not_available_here', 'roots are not available through this gateway route'),
        rt.log,
      );
      return;
    }
    if ('method' in m && m.method === 'notifications/tools/list_changed') session.tools.invalidate();
    deliverToClient(session, m, rt.log, related);
  };
  upstream.onClose = () => endSession(ctx.rt, session, 'upstream closed');
  // Stateless connections are in the store too: they count against the same quotas and are swept when idle.
  rt.sessions.add(session, slot);
  rt.audit.tryAppend({
    ts: now,
    kind: 'session',
    route: route.name,
    upstream: route.name,
    transport: ctx.transport,
    sessionFingerprint: session.fingerprint,
    outcome: continued ? 'continued from the fleet' : 'created',
    ...principalFields(ctx.principal),
  });
  return session;
}

/** Finds the caller's own session; anyone else's id is answered as unknown and recorded. */
export function requireBoundSession(ctx: RequestContext, id: string | undefined): GatewaySession {
  if (!id) throw new BehalfError('session_required');
  const { session, mismatch } = ctx.rt.sessions.lookup(id, ctx.route.name, ctx.principal!);
  if (mismatch) recordMismatch(ctx, id);
  if (!session) throw new BehalfError('session_unknown');
  // A session also belongs to the transport that opened it: a legacy SSE id is unknown on the Streamable endpoint.
  if (session.kind !== (ctx.endpoint === 'messages' ? 'legacy-sse' : 'streamable'))
    throw new BehalfError('session_unknown');
  return session;
}

/** Someone presented a session id bound to another principal or route: answered as unknown, and recorded. */
export function recordMismatch(ctx: RequestContext, id: string): void {
  ctx.rt.ops.metrics?.sessionMismatch(ctx.route.name);
  ctx.rt.audit.tryAppend({
    ts: Date.now(),
    kind: 'session-mismatch',
    route: ctx.route.name,
    transport: ctx.transport,
    sessionFingerprint: sessionFingerprint(id),
    reason: 'session id presented by another principal',
    ...principalFields(ctx.principal),
  });
}

export function sessionIdHeader(ctx: RequestContext): string | undefined {
  return headerValue(ctx.req, 'mcp-session-id');
}

/**
 * Ends this instance's session. A fleet's HTTP session is only left here
 * (its upstream session goes on for the other instances) unless it ends
 * `everywhere` (the client's DELETE).
 */
export function endSession(
  rt: RequestContext['rt'],
  session: GatewaySession,
  reason: string,
  o: { everywhere?: boolean } = {},
): void {
  if (session.kind === 'stateless') {
    for (const [k, s] of rt.stateless) if (s === session) rt.stateless.delete(k);
  }
  if (rt.sessions.delete(session.id) === undefined) return;
  if (session.streamExpiry) clearTimeout(session.streamExpiry);
  session.stream?.close();
  for (const s of session.postStreams) s.close();
  void (session.fleetShared && !o.everywhere ? session.upstream.detach() : session.upstream.close());
  closeUserUpstreams(session);
  rt.audit.tryAppend({
    ts: Date.now(),
    kind: 'session',
    route: session.routeName,
    sessionFingerprint: session.fingerprint,
    outcome: `ended: ${reason}`,
    ...principalFields(session.principal),
  });
}

/**
 * A stdio upstream's children: within the caps per upstream (503 past it)
 * and per user, where at her own cap the user's least recently used child
 * goes (clients often never DELETE their sessions); nobody else's is touched.
 */
function enforceProcessCaps(ctx: RequestContext): void {
  const { rt, route } = ctx;
  const cfg = route.upstream;
  if (cfg.transport !== 'stdio') return;
  const mine = principalKey(ctx.principal!);
  const live = rt.sessions.all().filter((s) => s.routeName === route.name);
  if (live.length >= cfg.perUser.maxTotal)
    throw new BehalfError('too_many_processes', `upstream ${route.name} already runs ${cfg.perUser.maxTotal} children`);
  const hers = live.filter((s) => s.boundTo === mine).sort((a, b) => a.lastSeen - b.lastSeen);
  for (const s of hers.slice(0, Math.max(0, hers.length - cfg.perUser.maxPerUser + 1)))
    endSession(rt, s, 'per-user process cap');
}

/**
 * A stdio upstream's child runs for one user: with `{user}` resolved and that
 * user's credential, if the upstream declares a strategy. No credential to be
 * had: no child.
 */
async function childUser(
  ctx: RequestContext,
  strategy: DownstreamStrategy | undefined,
): Promise<ChildUser | undefined> {
  const { rt, route } = ctx;
  const cfg = route.upstream;
  if (cfg.transport !== 'stdio') return undefined;
  const principal = ctx.principal!;
  if (!principal.user) return undefined;
  let credential: string | undefined;
  if (strategy && cfg.perUser.credentialEnv) {
    let cred;
    try {
      cred = await strategy.credentialFor({ principal, upstream: route.name });
    } catch (err) {
      rt.log(`downstream credential for ${route.name}'s per-user process failed: ${describeError(err)}`);
      throw new BehalfError('downstream_credential_unavailable', undefined, {}, { cause: err });
    }
    const value = cred ? Object.values(cred.headers)[0] : undefined;
    credential = value?.replace(/^Bearer\s+/i, '');
  }
  return { subject: principal.user.subject, credential };
}
