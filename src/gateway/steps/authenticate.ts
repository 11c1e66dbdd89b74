import type { Principal } from '../../identity/principal.js';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { BehalfError } from '../../errors.js';
import type { AuthRequest } from '../../identity/authenticator.js';
import type { Step } from '../context.js';
import { inboundOf, type Route } from '../route.js';

/** The verified client certificate's fingerprint of a request (also the SDK's middleware, src/sdk/). */
export function peerFingerprint(req: IncomingMessage): string | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  // Only a certificate the TLS layer verified against the client CA counts.
  if (!socket.encrypted || !socket.authorized || !socket.getPeerCertificate) return undefined;
  const cert = socket.getPeerCertificate();
  return cert && cert.fingerprint256 ? cert.fingerprint256 : undefined;
}

/**
 * Node keeps only the first of repeated Authorization headers, so a second one
 * would be silently ignored (and another hop might read that one instead).
 * Hand all of them to the authenticator, which refuses more than one.
 */
export function credentialHeaders(req: IncomingMessage): IncomingHttpHeaders {
  const raw = req.rawHeaders;
  let values: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization') (values ??= []).push(raw[i + 1]!);
  }
  return values && values.length > 1
    ? ({ ...req.headers, authorization: values } as unknown as IncomingHttpHeaders)
    : req.headers;
}

/** A route that accepts signed user context gets its user per message (dispatch), so a token is optional or refused here. */
function userSourceOf(route: Route): AuthRequest['userSource'] {
  const inbound = inboundOf(route);
  const tokens = inbound.includes('token') || inbound.includes('token-exchange');
  if (!inbound.includes('signed-context')) return 'token';
  return tokens ? 'either' : 'message';
}

/**
 * A bearer user token is either the user's own (no `act`) or one the agent
 * exchanged for (with `act`); each is accepted only where the route lists it.
 */
function checkTokenKind(route: Route, principal: Principal): void {
  const user = principal.user;
  if (!user || user.tokenFingerprint === undefined) return;
  const inbound = inboundOf(route);
  const kind = user.actor !== undefined ? 'token-exchange' : 'token';
  if (!inbound.includes(kind)) {
    throw new BehalfError(
      'user_token_invalid',
      kind === 'token-exchange'
        ? 'exchanged (act) tokens are not accepted on this route'
        : 'this route accepts only exchanged tokens',
    );
  }
}

export const authenticate: Step = {
  name: 'authenticate',
  why: 'client then user, on every request: a session id never stands in for credentials',
  async run(ctx) {
    ctx.principal = await ctx.rt.authenticator.authenticate({
      headers: credentialHeaders(ctx.req),
      peerFingerprint256: peerFingerprint(ctx.req),
      resource: ctx.route.resource,
      userSource: userSourceOf(ctx.route),
    });
    checkTokenKind(ctx.route, ctx.principal);
  },
};

export const checkScopes: Step = {
  name: 'check_scopes',
  why: 'a token without the scopes this resource needs gets 403 insufficient_scope naming all of them',
  run(ctx) {
    requireScopes(ctx.rt.config.userAuth.scopes, ctx.principal);
  },
};

/** Throws 403 insufficient_scope naming every required scope when the user's token lacks one. */
export function requireScopes(required: readonly string[], principal: Principal | undefined): void {
  if (!required.length || !principal?.user) return;
  const have = new Set(principal.user.scopes);
  if (required.some((s) => !have.has(s)))
    throw new BehalfError('insufficient_scope', undefined, { scope: required.join(' ') });
}
