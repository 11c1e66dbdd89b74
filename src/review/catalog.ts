/**
 * The review's checks: stable ids, titles and the checklist question each
 * answers, exactly as docs/architecture.md §7 names them. Reports, SARIF rule ids and
 * `behalf review diff` key on `id`; never renumber or reword one.
 */
export const CHECKS = [
  { id: 'BND-01', title: 'client-auth-required', question: 'every endpoint and method rejects unauthenticated calls' },
  { id: 'BND-02', title: 'client-credential-strength', question: 'wrong, revoked or query-string credentials are rejected; TLS verification is not disabled' },
  { id: 'BND-03', title: 'user-identity-required', question: 'a valid client without a user identity is rejected where users are expected' },
  { id: 'BND-04', title: 'user-token-validation', question: 'forged and invalid user tokens are rejected (alg none, HS/RS confusion, unknown kid, bad signature, wrong issuer, wrong audience, expired, not-yet-valid, actor mismatch, replayed assertion)' },
  { id: 'BND-05', title: 'per-user-authorization', question: 'user A is denied user B\'s data, while B\'s own call succeeds (positive control)' },
  { id: 'BND-06', title: 'list-call-consistency', question: 'what a user may not call is not listed to them, and what is listed is callable' },
  { id: 'BND-07', title: 'session-binding', question: 'a session id replayed with another user\'s token, or with none, is rejected' },
  { id: 'BND-08', title: 'stream-revalidation', question: 'a long-lived stream ends or is refused once its token expires or is revoked' },
  { id: 'BND-09', title: 'downstream-user-scoped', question: 'downstream systems receive user-scoped credentials, never the client\'s token' },
  { id: 'BND-10', title: 'credential-management', question: 'no secrets in config or code, secrets by reference, keys within their rotation age, a rotation record exists' },
  { id: 'BND-11', title: 'discovery-and-challenges', question: 'RFC 9728 metadata is served and consistent; 401/403 challenges are well formed' },
  { id: 'BND-12', title: 'transport-hardening', question: 'Origin validation, TLS, and what stdio children inherit' },
] as const;

export type CheckId = (typeof CHECKS)[number]['id'];
export type CheckSpec = (typeof CHECKS)[number];

/** Which of the five questions of docs/architecture.md §1 each check gives evidence for. */
export const CHECKLIST_QUESTION: Record<CheckId, 1 | 2 | 3 | 4 | 5> = {
  'BND-01': 1, 'BND-02': 1, 'BND-03': 2, 'BND-04': 2, 'BND-05': 3, 'BND-06': 3,
  'BND-07': 2, 'BND-08': 2, 'BND-09': 4, 'BND-10': 5, 'BND-11': 1, 'BND-12': 1,
};

export const CHECKLIST = {
  1: 'Is client authentication required?',
  2: 'Is the end user identified?',
  3: 'Is per-user authorization enforced?',
  4: 'Are downstream systems called with user-scoped credentials?',
  5: 'Are the client\'s own credentials managed (stored safely, rotated, never in code)?',
} as const;

export function checkSpec(id: CheckId): CheckSpec {
  const spec = CHECKS.find((c) => c.id === id);
  if (!spec) throw new Error(`unknown check ${id}`);
  return spec;
}
