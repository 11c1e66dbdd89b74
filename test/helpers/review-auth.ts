/**
 * The review servers' own bearer-token check (jose, against the dev IdP's
 * JWKS) — what a careful MCP server does, with a switch per flaw.
 */
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  UnsecuredJWT,
  type JWTClaimVerificationOptions,
  type JWTPayload,
} from 'jose';
import { DIRECTORY, type Caller } from './review-crm.js';

export interface TokenRules {
  /** Trust an unsigned (alg none) token whose claims look right: the alg-none flaw. */
  algNone: boolean;
  /** Check aud = this server's resource; off for any-audience. */
  audience: boolean;
  /** Refuse tokens naming no user (client_credentials); off for service-account-only. */
  userRequired: boolean;
}

/** Asymmetric only: an HMAC "signature" keyed with the public key must never verify. */
const ALGORITHMS = ['RS256', 'PS256', 'ES256'];

/** A refusal that becomes 401 `error="invalid_token"`; its message is safe to show. */
export class InvalidToken extends Error {}

function algOf(token: string): unknown {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
}

export function tokenVerifier(o: {
  issuer: string;
  jwksUri: string;
  resource: string;
  rules: TokenRules;
}): (token: string) => Promise<Caller> {
  const keys = createRemoteJWKSet(new URL(o.jwksUri));
  const claims: JWTClaimVerificationOptions = {
    issuer: o.issuer,
    ...(o.rules.audience ? { audience: o.resource } : {}),
    requiredClaims: ['sub', 'exp'],
  };
  return async (token) => {
    let payload: JWTPayload;
    try {
      payload =
        o.rules.algNone && algOf(token) === 'none'
          ? UnsecuredJWT.decode(token, claims).payload
          : (await jwtVerify(token, keys, { ...claims, algorithms: ALGORITHMS })).payload;
    } catch {
      throw new InvalidToken('the token is invalid or expired');
    }
    const sub = payload.sub!;
    // oidc-provider gives a client_credentials token sub = client_id: a client, with no user behind it.
    const user = sub !== payload.client_id ? DIRECTORY.get(sub) : undefined;
    if (o.rules.userRequired && !user) throw new InvalidToken('the token names no user');
    return { sub, token, exp: payload.exp!, ...(user ? { user } : {}) };
  };
}
