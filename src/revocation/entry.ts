import { z } from 'zod';

/**
 * One revocation: what is cut off, by whom, why, and until when it is
 * remembered (docs/revocation.md). Never a token or a key: tokens by jti or
 * fingerprint, sessions by fingerprint, keys by id.
 */
export const KINDS = ['user', 'client', 'token', 'session', 'key', 'signing-key'] as const;
export type RevocationKind = (typeof KINDS)[number];

export const SOURCES = ['admin', 'introspection', 'shared-signals', 'jwks'] as const;

export const RevocationSchema = z
  .object({
    kind: z.enum(KINDS),
    /** user: the subject; client: its id; token: jti or token fingerprint; session: session fingerprint; key: API key id; signing-key: kid. */
    value: z.string().min(1).max(500),
    /** user: the issuer (absent: every issuer); signing-key: the issuer that withdrew it. */
    issuer: z.string().min(1).max(500).optional(),
    reason: z.string().max(500),
    /** Who made it: an admin key id, a transmitter, an introspection endpoint, an issuer's key set. */
    actor: z.string().max(200),
    source: z.enum(SOURCES),
    /** Epoch ms. A user revocation refuses the tokens issued (iat) at or before it. */
    at: z.number(),
    /** Epoch ms: forgotten from then on. */
    expiresAt: z.number(),
    /** The instance that made it. */
    from: z.string().max(100).optional(),
  })
  .strict();

export type Revocation = z.infer<typeof RevocationSchema>;

/** The lookup key of a revocation: one map entry per (kind, issuer, value). */
export function revocationKey(kind: RevocationKind, value: string, issuer?: string): string {
  return `${kind}\0${issuer ?? '*'}\0${value}`;
}

export function keyOf(r: Pick<Revocation, 'kind' | 'value' | 'issuer'>): string {
  return revocationKey(r.kind, r.value, r.kind === 'user' || r.kind === 'signing-key' ? r.issuer : undefined);
}

/** A stored or published revocation, or undefined when the text is not one (never thrown: it came over the wire). */
export function parseRevocation(text: string): Revocation | undefined {
  if (text.length > 4000) return undefined;
  try {
    const r = RevocationSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    // Not JSON: not a revocation; the caller ignores it.
    return undefined;
  }
}

/** One line for logs and audit reasons, naming what was revoked but no secret. */
export function describeRevocation(r: Revocation): string {
  const what = r.kind === 'user' ? `user ${r.value}${r.issuer ? ` (${r.issuer})` : ''}` : `${r.kind} ${r.value}`;
  return `${what} revoked by ${r.actor} (${r.source}): ${r.reason || 'no reason given'}`;
}
