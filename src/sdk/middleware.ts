import type { IncomingMessage, ServerResponse } from 'node:http';
import { principalFields } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/event.js';
import { BehalfError, toBehalfError } from '../errors.js';
import { sendError } from '../gateway/challenge.js';
import { sendJson } from '../gateway/http-io.js';
import { addressOf } from '../gateway/limits/connections.js';
import { metadataUrlFor, resourceMetadata } from '../gateway/metadata.js';
import { credentialHeaders, peerFingerprint, requireScopes } from '../gateway/steps/authenticate.js';
import type { Principal } from '../identity/principal.js';
import { sessionFingerprint } from '../state/sessions.js';
import { authInfoFor, SdkCaller, type BehalfAuthInfo } from './caller.js';
import type { SdkRuntime } from './runtime.js';

/** A Node request as Express and the v1 transport see it: `auth` is where `StreamableHTTPServerTransport` reads `authInfo`. */
export type ProtectedRequest = IncomingMessage & { auth?: BehalfAuthInfo };

/** The outcome of the HTTP gate: the request's auth info, or undefined when the gate has answered the request itself. */
export type GateResult = BehalfAuthInfo | undefined;

function refuse(rt: SdkRuntime, req: IncomingMessage, res: ServerResponse, e: BehalfError, p?: Principal): void {
  if (e.status === 401 || e.code === 'insufficient_scope') {
    const event: AuditEvent = {
      ts: Date.now(),
      kind: 'auth-failure',
      route: rt.name,
      transport: 'streamable-http',
      reason: `${e.code}: ${e.message}`,
      refusedBy: 'authenticate',
      ...principalFields(p),
    };
    // A failure that proved no one goes through the recorder, which bounds what a flood of them costs.
    if (p) rt.audit.tryAppend(event);
    else rt.authFailures.record(event, addressOf(req.socket) ?? 'unknown');
  }
  sendError(res, e, { metadataUrl: metadataUrlFor(rt.resource), scopes: rt.config.userAuth.scopes });
}

/** A request naming a session must come from its owner; anyone else's id is answered exactly like an unknown one. */
function checkSession(rt: SdkRuntime, req: IncomingMessage, p: Principal): void {
  const id = req.headers['mcp-session-id'];
  if (id === undefined) return;
  if (Array.isArray(id)) throw new BehalfError('invalid_request', 'mcp-session-id repeated');
  const state = rt.sessions.check(id, p);
  if (state === 'ok') {
    if (req.method === 'DELETE') rt.sessions.forget(id);
    return;
  }
  if (state === 'mismatch')
    rt.audit.tryAppend({
      ts: Date.now(),
      kind: 'session-mismatch',
      route: rt.name,
      sessionFingerprint: sessionFingerprint(id),
      ...principalFields(p),
    });
  throw new BehalfError('session_unknown');
}

/** Browsers send Origin: a foreign page must not drive the server with the user's ambient reachability (BND-12). */
function checkOrigin(rt: SdkRuntime, req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin !== undefined && !rt.allowedOrigins.has(String(origin).toLowerCase()))
    throw new BehalfError('origin_not_allowed');
}

/** A response (an SSE stream above all) ends when the token that opened it expires (docs/architecture.md §9). */
function endAtExpiry(res: ServerResponse, p: Principal): void {
  const exp = p.user?.expiresAt;
  if (exp === undefined) return;
  const timer = setTimeout(() => res.end(), Math.min(Math.max(0, exp * 1000 - Date.now()), 2 ** 31 - 1));
  timer.unref();
  res.once('close', () => clearTimeout(timer));
}

/**
 * The HTTP half of the boundary, in front of the SDK's transport (the
 * gateway's endpoint steps that apply to a server of one's own,
 * docs/architecture.md §2): RFC 9728 metadata at its well-known URL, the
 * Origin check, client then user authentication on every request with
 * well-formed challenges, the scopes every request needs, and session
 * binding; a response outlives its token by no more than a timer's latency.
 * Answers the request itself (and returns undefined) when it is refused or
 * is the metadata request; else returns the auth info, also put on
 * `req.auth` for the v1 transport.
 */
export async function gate(rt: SdkRuntime, req: ProtectedRequest, res: ServerResponse): Promise<GateResult> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === new URL(metadataUrlFor(rt.resource)).pathname && (req.method === 'GET' || req.method === 'HEAD')) {
    sendJson(res, 200, resourceMetadata(rt.config, rt.resource, rt.name), { 'access-control-allow-origin': '*' });
    return undefined;
  }
  let principal: Principal | undefined;
  try {
    checkOrigin(rt, req);
    principal = await rt.authenticator.authenticate({
      headers: credentialHeaders(req),
      peerFingerprint256: peerFingerprint(req),
      resource: rt.resource,
    });
    requireScopes(rt.config.userAuth.scopes, principal);
    checkSession(rt, req, principal);
  } catch (err) {
    refuse(rt, req, res, toBehalfError(err), principal);
    return undefined;
  }
  endAtExpiry(res, principal);
  const auth = authInfoFor(new SdkCaller(principal, rt));
  req.auth = auth;
  return auth;
}
