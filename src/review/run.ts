import { CHECKS, type CheckId } from './catalog.js';
import { CHECK_FUNCTIONS } from './checks/index.js';
import { ReviewContext, type ReviewInputs } from './context.js';
import { EVIDENCE_SCHEMA_ID, EVIDENCE_SCHEMA_VERSION, type EvidencePack } from './evidence/schema.js';
import { configReview } from './static/config-review.js';
import { commandLineEvidence } from './static/transport.js';
import { survey, toolListHash } from './survey.js';
import { BudgetExceeded, type Exchange } from './transcript.js';
import { NOT_SELECTED, withSeverities } from './severity.js';
import { statusOf, type CheckResult, type CheckStatus } from './types.js';
import { BEHALF_VERSION } from './version.js';

export interface ReviewRun {
  pack: EvidencePack;
  exchanges: Exchange[];
  /** Every credential the review used, for the writer's last guard. */
  secrets: string[];
}

export interface RunOptions {
  progress?: (line: string) => void;
  onCheck?: (result: CheckResult) => void;
  /** Run only these checks (tests); the others are reported not-assessed. */
  only?: CheckId[];
}

/** Runs every check in order. A check that throws is not-assessed with the reason, never a pass. */
export async function runReview(inputs: ReviewInputs, opts: RunOptions = {}): Promise<ReviewRun> {
  const progress = opts.progress ?? (() => {});
  const ctx = new ReviewContext(inputs, progress);
  const startedAt = new Date();
  // Before any check: the config's hashes belong in the fingerprint whichever checks run, and a secret on the command line must be known to the redactor before the command is written into the pack.
  configReview(ctx);
  if (inputs.command) commandLineEvidence(inputs.command, ctx);
  if (inputs.target && ctx.hasProfile) {
    progress('survey: opening a session as each identity and listing its tools');
    for (const p of await survey(ctx)) progress(`survey: ${p}`);
  }
  const checks: CheckResult[] = [];
  for (const spec of CHECKS) {
    progress(`${spec.id} ${spec.title} …`);
    const started = performance.now();
    ctx.transcript.at(spec.id, '');
    const fn = CHECK_FUNCTIONS[spec.id];
    let result: CheckResult;
    if (opts.only && !opts.only.includes(spec.id)) {
      result = notAssessed(spec, NOT_SELECTED);
    } else if (!fn) {
      result = notAssessed(spec, 'this check is not implemented');
    } else if (ctx.remainingMs() <= 0) {
      result = notAssessed(spec, `the review's time limit (${ctx.profile.limits.timeSeconds} s) was reached before this check`);
    } else {
      try {
        const out = await fn(ctx);
        const status = out.status ?? statusOf(out.evidence);
        result = { ...spec, ...out, status, ...(needsReason(status) && !out.reason ? { reason: out.finding } : {}), durationMs: 0 };
      } catch (err) {
        const why = err instanceof BudgetExceeded ? err.message : `the check could not complete: ${ctx.redactor.text((err as Error).message ?? String(err))}`;
        result = notAssessed(spec, why);
      }
    }
    result = withSeverities(result);
    result.durationMs = Math.round(performance.now() - started);
    checks.push(result);
    progress(`${spec.id} ${result.status}: ${result.finding}`);
    opts.onCheck?.(result);
  }
  const finishedAt = new Date();
  const summary = Object.fromEntries((['pass', 'fail', 'warn', 'partial', 'not-assessed', 'n/a'] as CheckStatus[]).map((s) => [s, checks.filter((c) => c.status === s).length])) as Record<CheckStatus, number>;
  const pack: EvidencePack = {
    $schema: EVIDENCE_SCHEMA_ID,
    schemaVersion: EVIDENCE_SCHEMA_VERSION,
    tool: { name: 'behalf', version: BEHALF_VERSION },
    review: {
      startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), durationMs: finishedAt.getTime() - startedAt.getTime(),
      requests: ctx.transcript.count, maxRequests: ctx.profile.limits.maxRequests, timeLimitSeconds: ctx.profile.limits.timeSeconds,
      safeToCall: [...ctx.profile.safeToCall], identities: ctx.identityNames(),
    },
    target: {
      ...(inputs.target ? { url: ctx.redactor.text(inputs.target.href), transport: inputs.transport } : {}),
      ...(inputs.configPath ? { configFile: inputs.configPath } : {}),
      ...(inputs.repoDir ? { repoDir: inputs.repoDir } : {}),
      ...(inputs.command ? { command: ctx.redactor.text(inputs.command) } : {}),
    },
    fingerprint: {
      ...(ctx.facts.serverInfo ? { serverInfo: ctx.facts.serverInfo } : {}),
      ...(ctx.facts.protocolVersion ? { protocolVersion: ctx.facts.protocolVersion } : {}),
      ...(ctx.facts.tools ? { toolListHash: toolListHash(ctx.facts.tools) } : {}),
      toolsByIdentity: ctx.facts.toolsByIdentity,
      ...(ctx.facts.configHash ? { configHash: ctx.facts.configHash } : {}),
      ...(ctx.facts.keysHash ? { keysHash: ctx.facts.keysHash } : {}),
    },
    summary,
    checks,
    transcripts: { file: 'transcripts.jsonl', exchanges: ctx.transcript.count },
  };
  return { pack, exchanges: ctx.transcript.exchanges, secrets: ctx.redactor.known() };
}

function needsReason(s: CheckStatus): boolean {
  return s === 'not-assessed' || s === 'n/a';
}

function notAssessed(spec: (typeof CHECKS)[number], reason: string): CheckResult {
  return { ...spec, status: 'not-assessed', finding: reason, reason, remediation: 'Re-run the review once the reason above is addressed.', evidence: [], durationMs: 0 };
}
