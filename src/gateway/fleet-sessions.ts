import { principalFields } from '../audit/audit-log.js';
import { BehalfError } from '../errors.js';
import { principalKey } from '../identity/principal.js';
import type { SessionRecord } from '../state/shared-sessions.js';
import type { RequestContext } from './context.js';
import type { GatewaySession } from './session.js';
import { createSession, endSession, recordMismatch, requireBoundSession } from './session-binding.js';

/**
 * A fleet's Streamable HTTP sessions (state.redis; docs/architecture.md §11,
 * Sessions): the record in Redis is the truth, this instance's sessions are a
 * cache of it. Every request reads the record, so a session DELETEd or
 * expired anywhere is dead here on its next request, and the binding to its
 * principal is checked here whoever opened it. Without state.redis, nothing
 * of this runs.
 */

/** Only Streamable HTTP upstream sessions can be continued elsewhere; a child process or an SSE stream cannot move. */
function continuable(ctx: RequestContext): boolean {
  return ctx.route.upstream.transport === 'streamable-http';
}

/** Continuations being opened here, by session id: two requests at once build one local session, not two. */
const opening = new Map<string, Promise<GatewaySession>>();

/** After a successful initialize: the session goes to the fleet. Redis failing fails the initialize (503). */
export async function publishSession(
  ctx: RequestContext,
  session: GatewaySession,
  initializeParams: Record<string, unknown>,
): Promise<void> {
  const shared = ctx.rt.shared;
  if (!shared) return;
  const record: SessionRecord = {
    boundTo: session.boundTo,
    route: session.routeName,
    kind: 'streamable',
    initializeParams,
    createdAt: session.createdAt,
    ...(session.protocolVersion ? { protocolVersion: session.protocolVersion } : {}),
    ...(session.upstream.sessionId ? { upstreamSessionId: session.upstream.sessionId } : {}),
    ...(continuable(ctx) ? {} : { owner: shared.instanceId }),
  };
  await shared.sessions.put(session.id, record);
  if (continuable(ctx)) shareUpstream(ctx.rt, session, record);
}

/** The caller's own Streamable HTTP session, from this instance's cache or the fleet's record. */
export async function requireStreamableSession(ctx: RequestContext, id: string | undefined): Promise<GatewaySession> {
  const shared = ctx.rt.shared;
  if (!shared || !id) return requireBoundSession(ctx, id);
  const record = await shared.sessions.get(id);
  const found = ctx.rt.sessions.peek(id);
  const local = found?.kind === 'streamable' ? found : undefined;
  if (!record) {
    // DELETEd on another instance, or expired in the fleet: this copy is over too.
    if (local) endSession(ctx.rt, local, 'ended in the fleet');
    throw new BehalfError('session_unknown');
  }
  if (record.route !== ctx.route.name || record.boundTo !== principalKey(ctx.principal!)) {
    recordMismatch(ctx, id);
    throw new BehalfError('session_unknown');
  }
  if (local) {
    const session = requireBoundSession(ctx, id);
    // Another instance re-initialized the upstream session: go on with the new one.
    if (session.fleetShared && record.upstreamSessionId !== session.upstream.sessionId)
      session.upstream.continueSession(record.upstreamSessionId, record.protocolVersion);
    return session;
  }
  // A child process lives on its owner instance only: elsewhere (or once it is gone) the session is over, and the client re-initializes.
  if (!continuable(ctx)) throw new BehalfError('session_unknown');
  let pending = opening.get(id);
  if (!pending) {
    pending = continueHere(ctx, id, record).finally(() => opening.delete(id));
    opening.set(id, pending);
  }
  return pending;
}

async function continueHere(ctx: RequestContext, id: string, record: SessionRecord): Promise<GatewaySession> {
  const session = await createSession(ctx, 'streamable', {
    id,
    createdAt: record.createdAt,
    ...(record.upstreamSessionId ? { upstreamSessionId: record.upstreamSessionId } : {}),
    ...(record.protocolVersion ? { protocolVersion: record.protocolVersion } : {}),
  });
  shareUpstream(ctx.rt, session, record);
  return session;
}

/** The client's DELETE: the record goes first (dead on every instance), then this instance's copy and the upstream session. */
export async function deleteSession(ctx: RequestContext, session: GatewaySession): Promise<void> {
  const shared = ctx.rt.shared;
  await shared?.sessions.delete(session.id, shared.events.keys(session.id));
  endSession(ctx.rt, session, 'deleted by client', { everywhere: true });
}

/**
 * The session's upstream side belongs to the fleet: left, not ended, when
 * this copy ends, and re-initialized as the same user with the client's own
 * initialize params when the upstream has forgotten it — the client sees no
 * error, the audit sees the re-initialization.
 */
function shareUpstream(rt: RequestContext['rt'], session: GatewaySession, record: SessionRecord): void {
  session.fleetShared = true;
  const upstream = session.upstream;
  upstream.recoverSessionsWith(async () => {
    upstream.resetSession();
    const init = await upstream.request({
      jsonrpc: '2.0',
      id: 'gateway-reinit',
      method: 'initialize',
      params: record.initializeParams,
    });
    if (!('result' in init))
      throw new BehalfError('upstream_unavailable', 'the upstream refused to initialize the session again');
    const version = init.result.protocolVersion;
    if (typeof version === 'string') {
      upstream.setProtocolVersion(version);
      session.protocolVersion = version;
    }
    await upstream.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const updated: SessionRecord = {
      ...record,
      ...(session.protocolVersion ? { protocolVersion: session.protocolVersion } : {}),
      ...(upstream.sessionId ? { upstreamSessionId: upstream.sessionId } : {}),
    };
    // Only if the session still exists: a DELETE elsewhere in the meantime is not undone.
    if (!(await rt.shared!.sessions.update(session.id, updated))) throw new BehalfError('session_unknown');
    Object.assign(record, updated);
    rt.audit.tryAppend({
      ts: Date.now(),
      kind: 'session',
      route: session.routeName,
      upstream: session.routeName,
      sessionFingerprint: session.fingerprint,
      outcome: 're-initialized',
      reason: 'the upstream no longer knew the session (404)',
      ...principalFields(session.principal),
    });
  });
}
