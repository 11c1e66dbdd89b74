import type { Principal } from '../identity/principal.js';
import type { SdkRuntime } from './runtime.js';

/**
 * The verified principal of one request, as the boundary's middleware hands
 * it to the SDK in `authInfo.extra.behalf` (the SDK passes `authInfo` to
 * every handler: `extra.authInfo` in v1, `ctx.http.authInfo` in v2). It is
 * this object, not a copy, that the gateway's modules key on (the user's own
 * token for a token exchange is remembered against it, src/delegation/subject-token.ts),
 * and it is never serialised with its runtime or principal.
 */
export class SdkCaller {
  constructor(
    readonly principal: Principal,
    readonly runtime: SdkRuntime,
  ) {}

  toJSON(): unknown {
    return { client: this.principal.client.id, subject: this.principal.user?.subject };
  }
}

/** What a handler may read about its caller: who, for whom, under which claims and scopes. */
export interface VerifiedUser {
  subject?: string;
  issuer?: string;
  /** The agent (the authenticated MCP client) the call came through. */
  client: string;
  /** Only the claims the issuer's `userClaims` let through. */
  claims: Record<string, unknown>;
  scopes: string[];
}

/** The `AuthInfo` the SDK's transports take (v1 `req.auth`, v2 `fetch(request, { authInfo })`): no token in it. */
export interface BehalfAuthInfo {
  /** Not the token: its fingerprint. Handlers that need a credential downstream ask `behalf.downstream(ctx, audience)`. */
  token: string;
  clientId: string;
  scopes: string[];
  expiresAt?: number;
  resource?: URL;
  extra: { behalf: SdkCaller; user: VerifiedUser; sub?: string } & Record<string, unknown>;
}

export function authInfoFor(caller: SdkCaller): BehalfAuthInfo {
  const { client, user } = caller.principal;
  const verified: VerifiedUser = {
    subject: user?.subject,
    issuer: user?.issuer,
    client: client.id,
    claims: user?.claims ?? {},
    scopes: user?.scopes ?? [],
  };
  return {
    token: `behalf:${user?.tokenFingerprint ?? client.credentialId}`,
    clientId: client.id,
    scopes: verified.scopes,
    ...(user ? { expiresAt: user.expiresAt } : {}),
    resource: new URL(caller.runtime.resource),
    // sub and the claims at the top level too: what servers written against plain `authInfo.extra` read.
    extra: { ...verified.claims, behalf: caller, user: verified, ...(user ? { sub: user.subject } : {}) },
  };
}

/** A handler's context in either SDK: v1 `extra` (authInfo), v2 `ctx` (http.authInfo). */
export interface HandlerContext {
  authInfo?: { extra?: Record<string, unknown> };
  http?: { authInfo?: { extra?: Record<string, unknown> } };
  sessionId?: string;
}

export function callerOf(ctx: unknown): SdkCaller | undefined {
  const c = ctx as HandlerContext | undefined;
  const b = (c?.authInfo ?? c?.http?.authInfo)?.extra?.behalf;
  return b instanceof SdkCaller ? b : undefined;
}

/** The verified user of a handler's context, or undefined when the boundary did not verify this request. */
export function userOf(ctx: unknown): VerifiedUser | undefined {
  const c = ctx as HandlerContext | undefined;
  return callerOf(ctx) ? ((c?.authInfo ?? c?.http?.authInfo)?.extra?.user as VerifiedUser) : undefined;
}
