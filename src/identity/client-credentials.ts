import type { JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/schema.js';

/** client_id or azp of a token: to whom the IdP issued it. */
export function tokenClientId(p: JWTPayload): string | undefined {
  const v = p.client_id ?? p.azp;
  return typeof v === 'string' ? v : undefined;
}

/**
 * Whether a token was issued to a client for itself (client credentials)
 * rather than for a user. `sub == client_id` is one convention; IdPs use
 * others (`gty: client-credentials`, a `sub` of `<id>@clients`), which the
 * issuer's `clientCredentials` names — without it such a token would pass as
 * a user whose subject is the client.
 */
export function isClientCredentialsToken(p: JWTPayload, issuer: IssuerConfig): boolean {
  if (p.sub !== undefined && p.sub === tokenClientId(p)) return true;
  const d = issuer.clientCredentials;
  if (!d) return false;
  for (const [claim, want] of Object.entries(d.claims)) {
    const v = p[claim];
    if (typeof v === 'string' && (Array.isArray(want) ? want.includes(v) : want === v)) return true;
  }
  const sub = p.sub;
  return typeof sub === 'string' && d.subjectSuffixes.some((s) => sub.endsWith(s));
}
