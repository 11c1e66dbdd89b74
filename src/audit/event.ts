/** Every kind of record the gateway writes; a new kind is an addition within the record format's v1. */
export const AUDIT_KINDS = [
  'decision',
  'outcome',
  'auth-failure',
  'session-mismatch',
  'session',
  'lifecycle',
  'policy',
  'key',
  'revocation',
] as const;

/**
 * One audit record. It names who, what and why — and never carries a token,
 * key or secret: credentials appear as ids or fingerprints only, and argument
 * values only where the audit config keeps them (see redact.ts).
 */
export interface AuditEvent {
  /** Milliseconds since the epoch. */
  ts: number;
  kind: (typeof AUDIT_KINDS)[number];
  /** Correlates a decision with its outcome. */
  callId?: string;
  route?: string;
  upstream?: string;
  transport?: string;
  clientId?: string;
  clientMethod?: string;
  credentialId?: string;
  userIssuer?: string;
  userSubject?: string;
  tokenFingerprint?: string;
  sessionFingerprint?: string;
  method?: string;
  /** The tool name, resource URI or prompt name the call reaches. */
  target?: string;
  /** Arguments as JSON with every value not explicitly kept replaced by a redaction marker. */
  args?: string;
  /** HMAC-SHA256 of the canonical arguments (all values), so a record can be matched to a known call without storing it. */
  argsDigest?: string;
  decision?: 'allow' | 'deny';
  ruleIds?: string[];
  reason?: string;
  /** Content hash of the policy that made the decision. */
  policyVersion?: string;
  outcome?: string;
  latencyMs?: number;
  /** Which credential the upstream received (strategy name), never the credential. */
  downstreamStrategy?: string;
  /** Id (jti or fingerprint) of the downstream credential, never the credential. */
  downstreamCredentialId?: string;
  /** The pipeline step that refused the request or message (docs/architecture.md §2–3); absent when nothing was refused. */
  refusedBy?: string;
  /** A continuation (2026-07-28 input-required retry): the `callId` of the request it continues, the first of its rounds. */
  continuationOf?: string;
  /** The gateway instance that wrote the record (`behalf gateway --instance-id`, else `state.instanceId`, else host and pid): a fleet shares one trail. */
  instanceId?: string;
  /** The user's token scopes, space-separated (names, never the token): lets `behalf policy replay` re-decide step-up. */
  userScopes?: string;
  /**
   * The user claims the policy read when it decided (and `audit.claims.keep`), as JSON
   * `{"claims":{NAME:VALUE},"absent":[NAME]}`; secret-looking values redacted (decision-inputs.ts).
   */
  userClaims?: string;
}

/** A record as stored: numbered and chained to its predecessor. */
export interface AuditRecord extends AuditEvent {
  seq: number;
  /** Hash of the previous record (64 zeros for the first). */
  prevHash: string;
  /** SHA-256 over prevHash and the record's canonical form. */
  hash: string;
}

export interface AuditQuery {
  limit?: number;
  kind?: AuditEvent['kind'];
  subject?: string;
  issuer?: string;
  clientId?: string;
  method?: string;
  target?: string;
  decision?: 'allow' | 'deny';
  /** Epoch milliseconds, inclusive. */
  since?: number;
  until?: number;
  /** Only records with seq greater than this (for tail --follow). */
  afterSeq?: number;
}

export interface AppendOptions {
  /**
   * Nothing waits on this record (an outcome, a refusal already answered):
   * the store may hold it briefly and write it with the next record that
   * something waits on. A store is free to ignore this.
   */
  deferrable?: boolean;
}

/** Whether a store can take records now; the reason is a fixed phrase, safe to show without authentication (no path). */
export type AuditHealth = { ready: true } | { ready: false; reason: string };

/**
 * Where audit records live. SQLite is the embedded default; PostgreSQL
 * holds one trail for a fleet of gateways (pg-store.ts). Everything is async so a networked store fits.
 */
export interface AuditStore {
  /** Rejects when the record cannot be written: the caller must then refuse the call. */
  append(event: AuditEvent, opts?: AppendOptions): Promise<AuditRecord>;
  /** Newest `limit` matching records, returned oldest first. */
  query(filter?: AuditQuery): Promise<AuditRecord[]>;
  /** Every record in seq order, for verify and export. */
  records(fromSeq?: number): AsyncIterable<AuditRecord>;
  /** A named secret kept by the store, created on first use (e.g. the argument-digest key). */
  secret(name: string): Promise<Buffer>;
  close(): Promise<void>;
  /** Optional: what /readyz reports; a store without it is judged by its last append. */
  health?(): AuditHealth;
}
