/** Who is calling: the agent runtime. */
export interface Client {
  id: string;
  /** How the client proved itself; `none` only under allowUnauthenticated. */
  method: 'api-key' | 'mtls' | 'client-credentials' | 'oauth-token' | 'none';
  /** Which credential (API key id, certificate fingerprint, token client_id) — never the secret. */
  credentialId: string;
}

/** Whom the call is for: the end user, proven by a signed token. */
export interface User {
  issuer: string;
  subject: string;
  /** Only the claims the issuer config allow-lists, for policy. */
  claims: Record<string, unknown>;
  scopes: string[];
  /** client_id or azp of the token: to whom the IdP issued it. */
  tokenClientId?: string;
  /** act.sub of a delegated (token-exchange) token. */
  actor?: string;
  tokenId?: string;
  /** iat, seconds since the epoch: a user revocation refuses the tokens issued before it (docs/revocation.md). */
  issuedAt?: number;
  /** The kid that signed the token: a key withdrawn from the issuer's JWKS ends its tokens. */
  keyId?: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  /** SHA-256 fingerprint of the token (first 16 hex), for audit correlation. */
  tokenFingerprint: string;
}

export interface Principal {
  client: Client;
  user?: User;
}

/** Session binding key: a session belongs to exactly this (client, issuer, subject). */
export function principalKey(p: Principal): string {
  return JSON.stringify([p.client.id, p.user?.issuer ?? '', p.user?.subject ?? '']);
}
