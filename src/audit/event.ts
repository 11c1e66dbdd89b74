/**
 * One audit record. It names who, what and why — and never carries a token,
 * key or argument value: credentials appear as ids or fingerprints only.
 */
export interface AuditEvent {
  /** Milliseconds since the epoch. */
  ts: number;
  kind: 'decision' | 'outcome' | 'auth-failure' | 'session-mismatch' | 'session' | 'lifecycle';
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
  target?: string;
  decision?: 'allow' | 'deny';
  ruleIds?: string[];
  reason?: string;
  outcome?: string;
  latencyMs?: number;
  /** Which credential the upstream received (strategy name), never the credential. */
  downstreamStrategy?: string;
}

export interface AuditStore {
  /** Throws when the record cannot be written: the caller must then refuse the call. */
  append(event: AuditEvent): void;
  query(filter?: { limit?: number; kind?: AuditEvent['kind']; subject?: string }): AuditEvent[];
  close(): void;
}
