import type { CheckId } from './catalog.js';
import type { Severity } from './severity.js';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'partial' | 'not-assessed' | 'n/a';

/**
 * One observation inside a check: a probe sent and what came back, or a
 * static finding. `outcome` is judged per item; the check's status follows
 * from its items (statusOf), so a report can always show why.
 *  - ok: the boundary held (or a positive control succeeded);
 *  - bad: the boundary did not hold — a finding;
 *  - warn: a SHOULD-level deviation (e.g. RFC 6750 §3.1): reported, never a fail;
 *  - not-assessed: this part could not be judged (why in `detail`), e.g. a
 *    positive control failed, so a denial would prove nothing;
 *  - n/a: this part does not apply to the target;
 *  - info: context only, never changes the status.
 */
export interface EvidenceItem {
  outcome: 'ok' | 'bad' | 'warn' | 'not-assessed' | 'n/a' | 'info';
  /** For bad and warn items: how much it matters (the runner fills the check's default in). */
  severity?: Severity;
  /** What was tried, e.g. "alg none token on initialize". */
  probe: string;
  expected?: string;
  observed?: string;
  detail?: string;
  /** Transcript exchange numbers this item rests on. */
  exchanges?: number[];
  /** For static findings: where (a file and line, or a config path); never the secret itself. */
  location?: { file: string; line?: number; path?: string };
  /** A stable fingerprint of a finding, used to accept it (BND-10 repo scan) and to compare packs. */
  fingerprint?: string;
  accepted?: { reason: string };
}

export interface CheckResult {
  id: CheckId;
  title: string;
  question: string;
  status: CheckStatus;
  /** The worst finding's severity when it failed or warned, else the catalogue's (src/review/severity.ts). */
  severity?: Severity;
  /** One line: what the reviewer should know first. */
  finding: string;
  /** Why it is not-assessed or n/a (required for those statuses). */
  reason?: string;
  remediation: string;
  evidence: EvidenceItem[];
  durationMs: number;
}

/** What a check function returns; the runner adds id, title, question and timing. */
export interface CheckOutcome {
  status?: CheckStatus;
  finding: string;
  reason?: string;
  remediation: string;
  evidence: EvidenceItem[];
}

/**
 * A check's status from its items: any bad → fail; else any warn → warn; ok with some
 * not-assessed → partial; only ok → pass; nothing judged → not-assessed if
 * any part wanted judging, else n/a.
 */
export function statusOf(items: EvidenceItem[]): CheckStatus {
  const has = (o: EvidenceItem['outcome']) => items.some((i) => i.outcome === o);
  if (has('bad')) return 'fail';
  if (has('warn')) return 'warn';
  if (has('ok')) return has('not-assessed') ? 'partial' : 'pass';
  if (has('not-assessed')) return 'not-assessed';
  return 'n/a';
}
