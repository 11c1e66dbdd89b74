import type { CheckId } from './catalog.js';
import type { CheckResult, CheckStatus } from './types.js';

/**
 * How much a finding matters, separate from whether it was found: a token
 * accepted with `alg: none` and a challenge that names an error code where
 * RFC 6750 §3.1 says it SHOULD NOT are both deviations, not of the same
 * weight. `behalf review --fail-on` and SARIF levels key on this.
 */
export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

const RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1 };

/** What a failure of each check means when its items say nothing more specific. */
// prettier-ignore
export const CHECK_SEVERITY: Record<CheckId, Severity> = {
  'BND-01': 'critical', // anyone can call
  'BND-02': 'high', // weak, revoked or misplaced client credentials accepted
  'BND-03': 'critical', // calls served without a user: the gap behalf exists to close
  'BND-04': 'critical', // forged user tokens accepted
  'BND-05': 'critical', // one user reads another's data
  'BND-06': 'medium', // lists and calls disagree (the call decision still holds)
  'BND-07': 'high', // a session usable by someone else
  'BND-08': 'medium', // a stream outlives its token
  'BND-09': 'high', // downstream sees a shared credential, not the user
  'BND-10': 'high', // secrets inline or keys unrotated
  'BND-11': 'medium', // discovery and challenges malformed
  'BND-12': 'high', // DNS rebinding, no TLS, what children inherit
};

/** The severity of a SHOULD-level deviation (a `warn` item): worth fixing, never a boundary breach. */
export const WARN_SEVERITY: Severity = 'low';

export function atLeast(s: Severity, threshold: Severity): boolean {
  return RANK[s] >= RANK[threshold];
}

export function maxSeverity(list: readonly Severity[]): Severity | undefined {
  return list.reduce<Severity | undefined>((m, s) => (m === undefined || RANK[s] > RANK[m] ? s : m), undefined);
}

/** SARIF 2.1.0 result level for a severity (§3.27.10): error / warning / note. */
export function sarifLevel(s: Severity): 'error' | 'warning' | 'note' {
  return s === 'critical' || s === 'high' ? 'error' : s === 'medium' ? 'warning' : 'note';
}

/** GitHub code scanning reads `security-severity` (a CVSS-like score) to rank security results. */
export function securityScore(s: Severity): string {
  return { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0' }[s];
}

/**
 * Every bad item gets the check's severity unless the check said more, every
 * warn item the warn severity; the check's own severity is its worst finding,
 * or the catalogue's when it found nothing.
 */
export function withSeverities(r: CheckResult): CheckResult {
  const evidence = r.evidence.map((i) => {
    if (i.severity || (i.outcome !== 'bad' && i.outcome !== 'warn')) return i;
    return { ...i, severity: i.outcome === 'bad' ? CHECK_SEVERITY[r.id] : WARN_SEVERITY };
  });
  const found = maxSeverity(evidence.filter((i) => i.outcome === (r.status === 'warn' ? 'warn' : 'bad')).map((i) => i.severity!));
  return { ...r, evidence, severity: r.status === 'fail' || r.status === 'warn' ? (found ?? CHECK_SEVERITY[r.id]) : CHECK_SEVERITY[r.id] };
}

/** A review's exit code, documented in `behalf review --help` and README. */
export const REVIEW_EXIT = { clean: 0, failed: 1, usage: 2, incomplete: 4 } as const;

/** Checks `--only` left out are not-assessed with this reason; they do not make a run incomplete. */
export const NOT_SELECTED = 'not selected in this run';

export function reviewExitCode(checks: readonly CheckResult[], failOn: Severity): number {
  const run = checks.filter((c) => !(c.status === 'not-assessed' && c.reason === NOT_SELECTED));
  const blocking = (c: CheckResult) => (c.status === 'fail' || c.status === 'warn') && atLeast(c.severity ?? CHECK_SEVERITY[c.id], failOn);
  if (run.some(blocking)) return REVIEW_EXIT.failed;
  const clean: CheckStatus[] = ['pass', 'n/a'];
  return run.every((c) => clean.includes(c.status)) ? REVIEW_EXIT.clean : REVIEW_EXIT.incomplete;
}
