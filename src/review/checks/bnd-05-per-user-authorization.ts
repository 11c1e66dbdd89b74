import type { ReviewContext } from '../context.js';
import { callTool, type CallOutcome } from '../mcp.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { outcomeLine, reasonOf, UserSessions } from './user-probes.js';

/** Each entry costs two calls plus, at most, two new sessions: this keeps the check well inside its request budget. */
const MAX_ENTRIES = 8;

const REMEDIATION = 'Decide every tool call for the verified user, at the MCP layer: a policy rule that ties the data a call names (customer, owner, path) to claims of the user\'s token, with deny by default.';

/**
 * BND-05: for each crossUser entry, the rightful owner's call is made first
 * (the positive control), then the very same call as the other user, which
 * must be refused.
 */
export async function bnd05(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { finding: 'no --target given', reason: 'no --target given', remediation: REMEDIATION, evidence: [], status: 'not-assessed' };
  const entries = ctx.profile.crossUser;
  if (!entries.length) {
    const reason = 'the profile has no crossUser entries: add profile.crossUser (as, owner, call) naming a call only its owner may make';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [] };
  }
  const sessions = new UserSessions(ctx);
  const evidence: EvidenceItem[] = [];
  try {
    for (const entry of entries.slice(0, MAX_ENTRIES)) evidence.push(await probe(ctx, sessions, entry));
  } finally {
    await sessions.closeAll();
  }
  if (entries.length > MAX_ENTRIES) evidence.push({ outcome: 'info', probe: 'further crossUser entries', detail: `${entries.length - MAX_ENTRIES} entries beyond the first ${MAX_ENTRIES} were not tried` });
  const bad = evidence.filter((e) => e.outcome === 'bad').length;
  const ok = evidence.filter((e) => e.outcome === 'ok').length;
  const finding = bad
    ? `${bad} of ${evidence.length} cross-user calls were allowed: a user reached another user's data`
    : ok ? `every cross-user call tried (${ok}) was refused while its owner's call succeeded` : 'no cross-user call could be judged: see the positive controls';
  return { finding, remediation: REMEDIATION, evidence };
}

async function probe(ctx: ReviewContext, sessions: UserSessions, entry: ReviewContext['profile']['crossUser'][number]): Promise<EvidenceItem> {
  const { as, owner, call } = entry;
  const what = `${call.tool}(${JSON.stringify(call.arguments)})`;
  const probeName = `${as} calls ${owner}'s ${what}`;
  const mark = ctx.mark();
  const done = (item: Omit<EvidenceItem, 'probe' | 'exchanges'>): EvidenceItem => ({ probe: probeName, ...item, exchanges: ctx.since(mark) });
  if (!ctx.isSafe(call.tool)) return done({ outcome: 'not-assessed', detail: `${call.tool} is not in safeToCall: the review does not call it` });
  if (as === owner) return done({ outcome: 'not-assessed', detail: 'as and owner are the same identity: nothing crosses a user boundary' });

  ctx.step('BND-05', `positive control: ${owner} calls ${what}`);
  let control: CallOutcome;
  try {
    control = await callTool(ctx, await sessions.get(owner), call.tool, call.arguments);
  } catch (err) {
    return done({ outcome: 'not-assessed', detail: `positive control failed: ${owner} could not connect: ${reasonOf(ctx, err)}` });
  }
  if (control.kind !== 'allowed') {
    return done({ outcome: 'not-assessed', expected: `${owner}'s own call allowed`, observed: outcomeLine(ctx, control), detail: `positive control failed: ${owner}'s own call was not allowed, so a refusal for ${as} would prove nothing` });
  }

  ctx.step('BND-05', `${as} calls ${owner}'s ${what}`);
  let attack: CallOutcome;
  try {
    attack = await callTool(ctx, await sessions.get(as), call.tool, call.arguments);
  } catch (err) {
    return done({ outcome: 'not-assessed', detail: `${as} could not connect, so the call was never judged: ${reasonOf(ctx, err)}` });
  }
  const observed = outcomeLine(ctx, attack);
  const expected = `refused for ${as}; allowed for ${owner} (control: allowed)`;
  if (attack.kind === 'allowed') return done({ outcome: 'bad', expected, observed, detail: `${as} got a result for a call only ${owner} may make` });
  if (attack.kind === 'denied') return done({ outcome: 'ok', expected, observed });
  return done({ outcome: 'ok', expected, observed, detail: 'refused with an error that does not read as an authorization denial; no result was returned' });
}
