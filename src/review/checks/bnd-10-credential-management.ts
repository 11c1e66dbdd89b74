import { literalSecretMessage, SECRET_REF } from '../../config/literal-secrets.js';
import type { ReviewContext } from '../context.js';
import { configReview, unreadableItem, type ConfigReview } from '../static/config-review.js';
import { keyEvidence } from '../static/keys-review.js';
import { repoScanEvidence } from '../static/repo-scan.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';

const NOT_VISIBLE = 'credential management is not visible from outside: give --config and/or --repo';

/**
 * BND-10 credential-management, all static: no secrets in the config or the
 * code, secrets by reference, keys within their rotation age, and a record
 * of their creation and rotation. Nothing here sends a request.
 */
export async function bnd10(ctx: ReviewContext): Promise<CheckOutcome> {
  const review = configReview(ctx);
  if (!review && ctx.inputs.repoDir === undefined) {
    return { status: 'not-assessed', finding: NOT_VISIBLE, reason: NOT_VISIBLE, remediation: 'Re-run with --config (the gateway config) and/or --repo (the code).', evidence: [] };
  }
  const evidence: EvidenceItem[] = [];
  if (review) {
    ctx.step('BND-10', 'config: literal secrets, secret references, keys');
    evidence.push(...(review.error ? [unreadableItem(review, 'secrets in the config')] : [...secretItems(ctx, review), ...(await keyEvidence(review))]));
  }
  if (ctx.inputs.repoDir !== undefined) {
    ctx.step('BND-10', 'repository scan for embedded credentials');
    evidence.push(...repoScanEvidence(ctx));
  }
  return { finding: finding(evidence), remediation: REMEDIATION, evidence };
}

const REMEDIATION = 'Give every secret by reference (env:NAME or file:PATH with mode 600); remove credentials from code and its history and rotate them; '
  + 'manage keys with `behalf keys` so each has a creation date, an expiry within keys.maxAgeDays and a rotation record; accept harmless repo findings by fingerprint.';

function secretItems(ctx: ReviewContext, review: ConfigReview): EvidenceItem[] {
  const file = review.file;
  const out: EvidenceItem[] = review.literals.map((s) => ({
    outcome: 'bad' as const, probe: 'literal secret in the config', expected: 'secrets by reference (env:NAME or file:PATH)', observed: s.why,
    detail: literalSecretMessage(s), location: { file, path: s.path },
  }));
  if (!review.literals.length) out.push({ outcome: 'ok', probe: 'literal secrets in the config', expected: 'none', observed: 'none found', location: { file } });
  const refs = secretRefs(review.raw);
  for (const r of refs) out.push({ outcome: 'ok', probe: 'secret by reference', expected: 'env:NAME or file:PATH', observed: r.ref, location: { file, path: r.path } });
  if (!refs.length && !review.literals.length) out.push({ outcome: 'info', probe: 'secrets by reference', observed: 'the config holds no secrets', location: { file } });
  if (review.refusal) out.push({ outcome: 'info', probe: 'the gateway\'s own check of this config', observed: 'the gateway would refuse this file', detail: ctx.redactor.text(review.refusal), location: { file } });
  return out;
}

/** Every `env:`/`file:` string in the config, wherever the schema allows one. */
function secretRefs(raw: unknown): { path: string; ref: string }[] {
  const out: { path: string; ref: string }[] = [];
  const visit = (v: unknown, path: (string | number)[]) => {
    if (typeof v === 'string') {
      if (SECRET_REF.test(v)) out.push({ path: path.join('.'), ref: v });
    } else if (Array.isArray(v)) v.forEach((x, i) => visit(x, [...path, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, [...path, k]);
  };
  visit(raw, []);
  return out;
}

function finding(evidence: EvidenceItem[]): string {
  const bad = (probe: (p: string) => boolean) => evidence.filter((e) => e.outcome === 'bad' && probe(e.probe)).length;
  const parts = [
    [bad((p) => p === 'literal secret in the config'), 'literal secret(s) in the config'],
    [bad((p) => p.startsWith('credential')), 'credential(s) in the repository'],
    [bad((p) => p.startsWith('age of key')), 'key(s) past their rotation age'],
    [bad((p) => p === 'rotation record'), 'no rotation record'],
  ] as const;
  const found = parts.filter(([n]) => n > 0).map(([n, what]) => (what === 'no rotation record' ? what : `${n} ${what}`));
  if (found.length) return found.join('; ');
  if (evidence.some((e) => e.outcome === 'ok')) {
    return evidence.some((e) => e.outcome === 'not-assessed') ? 'no credential problem found in what could be judged; some parts could not be judged' : 'no secrets in config or code, secrets by reference, keys within their rotation age';
  }
  return 'nothing here could be judged';
}
