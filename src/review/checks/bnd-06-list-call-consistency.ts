import type { ReviewContext } from '../context.js';
import { callTool, type CallOutcome } from '../mcp.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { outcomeLine, reasonOf, UserSessions } from './user-probes.js';

/** Calls per check, all users together: enough for a few tools each, never a sweep of a large tool surface. */
const MAX_CALLS = 24;

const REMEDIATION = 'Filter tools/list (and prompts/resources lists) with the same rules used when a call is decided, so a user is shown exactly what that user may call.';

type Args = Record<string, unknown>;

/**
 * BND-06: the survey's per-user tool lists against calls. (a) A tool some
 * user is shown but this user is not must be refused to this user; its
 * positive control is the same call by a user who is shown it. (b) A tool
 * listed to this user, called with arguments known to be this user's own,
 * must not be refused.
 */
export async function bnd06(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { status: 'not-assessed', finding: 'no --target given', reason: 'no --target given', remediation: REMEDIATION, evidence: [] };
  const users = ctx.userNames();
  if (!users.length) {
    const reason = 'the profile has no user identities: add profile.identities';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [] };
  }
  const lists = ctx.facts.toolsByIdentity;
  const listed = users.filter((u) => lists[u]);
  const universe = [...new Set(listed.flatMap((u) => lists[u]!))].sort();
  const evidence: EvidenceItem[] = users.filter((u) => !lists[u]).map((u) => ({ outcome: 'not-assessed', probe: `${u}: tools/list`, detail: `the survey could not list ${u}'s tools, so nothing is compared for ${u}` }));
  const sessions = new UserSessions(ctx);
  const budget = { calls: 0 };
  const controls = new Map<string, Promise<Control | undefined>>();
  try {
    for (const user of listed) {
      const mine = new Set(lists[user]);
      for (const tool of universe.filter((t) => !mine.has(t) && ctx.isSafe(t))) {
        const listers = listed.filter((u) => lists[u]!.includes(tool));
        const { args, by } = argsFor(ctx, tool, listers);
        const key = `${by} ${tool} ${JSON.stringify(args)}`;
        let control = controls.get(key);
        if (!control) {
          control = positiveControl(ctx, sessions, budget, by, tool, args);
          controls.set(key, control);
        }
        evidence.push(await hiddenTool(ctx, sessions, budget, user, tool, args, await control));
      }
      for (const tool of lists[user]!.filter((t) => ctx.isSafe(t))) {
        const args = listedArgs(ctx, user, tool);
        if (args) evidence.push(await listedTool(ctx, sessions, budget, user, tool, args.args, args.bare));
      }
    }
    // A tool nobody is shown but the profile gives arguments for: served anyway is the classic filter bypass.
    for (const tool of Object.keys(ctx.profile.examples).filter((t) => !universe.includes(t) && ctx.isSafe(t))) {
      for (const user of listed) evidence.push(await unlistedEverywhere(ctx, sessions, budget, user, tool, ctx.profile.examples[tool]!));
    }
  } finally {
    await sessions.closeAll();
  }
  const skipped = notCompared(ctx, listed, universe);
  if (skipped.length) evidence.push({ outcome: 'info', probe: 'listed tools not compared', detail: skipped.join('; ') });
  const judged = evidence.filter((e) => e.outcome === 'ok' || e.outcome === 'bad');
  if (!judged.length && !evidence.some((e) => e.outcome === 'not-assessed')) {
    const reason = 'nothing comparable: every user is shown the same safe tools and no profile.examples (or crossUser calls owned by a user) give arguments to call a listed tool with';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence };
  }
  const callable = evidence.filter((e) => e.outcome === 'bad' && e.detail?.startsWith('callable but not listed')).length;
  const refused = evidence.filter((e) => e.outcome === 'bad' && e.detail?.startsWith('listed but refused')).length;
  const finding = callable || refused
    ? [callable ? `${callable} call(s) of tools not listed to the caller were allowed` : '', refused ? `${refused} listed tool(s) were refused to the caller` : ''].filter(Boolean).join('; ')
    : judged.length ? `lists and calls agree on every comparison tried (${judged.length})` : 'no comparison could be judged: see the evidence';
  return { finding, remediation: REMEDIATION, evidence };
}

/**
 * Arguments for a listed tool's own-user call: the profile's (a crossUser call this user owns, then
 * examples), else `{}` when the tool's input schema requires nothing — calling it bare is what any
 * client may do, and it is only ever done for tools in safeToCall.
 */
function listedArgs(ctx: ReviewContext, user: string, tool: string): { args: Args; bare: boolean } | undefined {
  const given = ctx.profile.crossUser.find((c) => c.owner === user && c.call.tool === tool)?.call.arguments ?? ctx.profile.examples[tool];
  if (given) return { args: given, bare: false };
  return requiredArgs(ctx, tool)?.length === 0 ? { args: {}, bare: true } : undefined;
}

/** The input schema's required arguments, or undefined when the survey saw no schema for the tool. */
function requiredArgs(ctx: ReviewContext, tool: string): string[] | undefined {
  const t = (ctx.facts.tools as Array<{ name: string; inputSchema?: { required?: unknown } }> | undefined)?.find((x) => x.name === tool);
  if (!t?.inputSchema) return undefined;
  const req = t.inputSchema.required;
  return Array.isArray(req) ? req.filter((r): r is string => typeof r === 'string') : [];
}

/** Each listed tool no call compared, with why: so a pass says what it covered. */
function notCompared(ctx: ReviewContext, listed: string[], universe: string[]): string[] {
  const out: string[] = [];
  for (const tool of universe) {
    if (!ctx.isSafe(tool)) {
      out.push(`${tool}: not in safeToCall, so never called`);
      continue;
    }
    const unshown = listed.filter((u) => !ctx.facts.toolsByIdentity[u]!.includes(tool));
    const callers = listed.filter((u) => ctx.facts.toolsByIdentity[u]!.includes(tool) && listedArgs(ctx, u, tool));
    if (unshown.length || callers.length) continue;
    const req = requiredArgs(ctx, tool);
    out.push(`${tool}: no arguments to call it with (${req === undefined ? 'no input schema seen' : `its input schema requires ${req.join(', ')}`}); add profile.examples.${tool}`);
  }
  return out;
}

interface Budget { calls: number }
interface Control { by: string; outcome: CallOutcome; exchanges: number[] }

async function call(ctx: ReviewContext, sessions: UserSessions, budget: Budget, user: string, tool: string, args: Args): Promise<CallOutcome | string> {
  if (budget.calls >= MAX_CALLS) return `the check's own limit of ${MAX_CALLS} calls was reached`;
  budget.calls++;
  try {
    return await callTool(ctx, await sessions.get(user), tool, args);
  } catch (err) {
    return `${user} could not connect: ${reasonOf(ctx, err)}`;
  }
}

const describeCall = (tool: string, args: Args) => `${tool}(${JSON.stringify(args)})`;
const show = outcomeLine;

/**
 * Arguments for calling a tool hidden from someone, and who is to make the
 * same call as the positive control: the profile's example (any lister), else
 * a crossUser call whose owner is shown the tool (that owner), else none.
 */
function argsFor(ctx: ReviewContext, tool: string, listers: string[]): { args: Args; by: string | undefined } {
  const example = ctx.profile.examples[tool];
  if (example) return { args: example, by: listers[0] };
  const owned = ctx.profile.crossUser.find((c) => c.call.tool === tool && listers.includes(c.owner));
  if (owned) return { args: owned.call.arguments, by: owned.owner };
  return { args: {}, by: listers[0] };
}

async function positiveControl(ctx: ReviewContext, sessions: UserSessions, budget: Budget, by: string | undefined, tool: string, args: Args): Promise<Control | undefined> {
  // One user who is shown the tool is enough: the point is that the call works for someone.
  if (!by) return undefined;
  ctx.step('BND-06', `positive control: ${by} (shown ${tool}) calls ${describeCall(tool, args)}`);
  const mark = ctx.mark();
  const outcome = await call(ctx, sessions, budget, by, tool, args);
  return { by, outcome: typeof outcome === 'string' ? { kind: 'error', detail: outcome } : outcome, exchanges: ctx.since(mark) };
}

async function hiddenTool(ctx: ReviewContext, sessions: UserSessions, budget: Budget, user: string, tool: string, args: Args, control: Control | undefined): Promise<EvidenceItem> {
  const mark = ctx.mark();
  const since = () => [...(control?.exchanges ?? []), ...ctx.since(mark)];
  const probe = `${user} calls ${describeCall(tool, args)}, not listed to ${user}`;
  ctx.step('BND-06', probe);
  const outcome = await call(ctx, sessions, budget, user, tool, args);
  const expected = `refused (not listed to ${user})`;
  if (typeof outcome === 'string') return { outcome: 'not-assessed', probe, detail: outcome, exchanges: since() };
  const observed = show(ctx, outcome);
  if (outcome.kind === 'allowed') return { outcome: 'bad', probe, expected, observed, detail: `callable but not listed: ${user} is not shown ${tool}, yet the call succeeded`, exchanges: since() };
  if (outcome.kind === 'error') return { outcome: 'not-assessed', probe, expected, observed, detail: 'the call failed with an error that is not an authorization refusal, so whether it is served to this user is unknown', exchanges: since() };
  if (!control || control.outcome.kind !== 'allowed') {
    const why = control ? `${control.by}, who is shown ${tool}, got ${show(ctx, control.outcome)}` : 'no user who is shown it could be asked';
    return { outcome: 'not-assessed', probe, expected, observed, detail: `positive control failed: ${why}; give profile.examples.${tool} arguments that work for a user it is listed to`, exchanges: since() };
  }
  return { outcome: 'ok', probe, expected, observed, detail: `positive control: ${control.by}, who is shown ${tool}, made the same call and it was allowed`, exchanges: since() };
}

async function listedTool(ctx: ReviewContext, sessions: UserSessions, budget: Budget, user: string, tool: string, args: Args, bare: boolean): Promise<EvidenceItem> {
  const mark = ctx.mark();
  const probe = `${user} calls ${describeCall(tool, args)}, listed to ${user}`;
  ctx.step('BND-06', probe);
  const outcome = await call(ctx, sessions, budget, user, tool, args);
  const expected = 'not refused (allowed, or an error that is not an authorization refusal)';
  if (typeof outcome === 'string') return { outcome: 'not-assessed', probe, detail: outcome, exchanges: ctx.since(mark) };
  const observed = show(ctx, outcome);
  // A bare call the review made up may be refused by a rule on arguments (the tool is listed because some call is allowed): context, not a finding.
  if (outcome.kind === 'denied' && bare) return { outcome: 'info', probe, observed, detail: `refused without arguments: a rule may decide ${tool} by its arguments; add profile.examples.${tool} to compare it`, exchanges: ctx.since(mark) };
  if (outcome.kind === 'denied') return { outcome: 'bad', probe, expected, observed, detail: `listed but refused: ${tool} is shown to ${user}, yet ${user}'s own call was refused`, exchanges: ctx.since(mark) };
  return { outcome: 'ok', probe, expected, observed, ...(outcome.kind === 'error' ? { detail: 'not refused, though the call itself failed' } : {}), exchanges: ctx.since(mark) };
}

async function unlistedEverywhere(ctx: ReviewContext, sessions: UserSessions, budget: Budget, user: string, tool: string, args: Args): Promise<EvidenceItem> {
  const mark = ctx.mark();
  const probe = `${user} calls ${describeCall(tool, args)}, listed to no one`;
  ctx.step('BND-06', probe);
  const outcome = await call(ctx, sessions, budget, user, tool, args);
  if (typeof outcome === 'string') return { outcome: 'not-assessed', probe, detail: outcome, exchanges: ctx.since(mark) };
  const observed = show(ctx, outcome);
  if (outcome.kind === 'allowed') return { outcome: 'bad', probe, expected: 'refused (listed to no one)', observed, detail: `callable but not listed: no user is shown ${tool}, yet ${user}'s call succeeded`, exchanges: ctx.since(mark) };
  // No user is shown it, so no positive control exists: a refusal is context, not proof.
  return { outcome: 'info', probe, expected: 'refused (listed to no one)', observed, detail: 'refused; no user is shown this tool, so there is no positive control', exchanges: ctx.since(mark) };
}
