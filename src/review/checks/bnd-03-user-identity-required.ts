import type { ReviewContext } from '../context.js';
import { callTool, connectAs, listTools, outcomeOfError, type McpConn } from '../mcp.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { observedOf, judgeRefusal, noTarget, summarize, tryConnect } from './auth-probes.js';

const REMEDIATION = 'Require a verified end-user identity (a user token whose subject is a user, not the client) on every request of a user-facing MCP server; a client credential alone — an API key, a client-credentials token — must get 401, or at least no tools and no tool results.';

/**
 * BND-03: a valid client with no user behind it (profile.clientOnly) gets
 * nothing. Refused at initialize is best; a server that lets it connect
 * passes only if it then lists nothing and serves no call.
 */
export async function bnd03(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { ...noTarget(), remediation: REMEDIATION };
  const name = ctx.profile.clientOnly;
  if (!name) {
    const reason = 'the profile names no client-only identity: add one (clientOnly: an identity with the client credential and no user token)';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [] };
  }
  const connected = ctx.userNames().filter((n) => ctx.facts.toolsByIdentity[n] !== undefined);
  const items: EvidenceItem[] = [connected.length
    ? { outcome: 'ok', probe: 'positive control: a user identity connects', observed: `${connected.join(', ')} initialized and listed tools in the survey`, exchanges: ctx.transcript.numbersFor('survey') }
    : { outcome: 'not-assessed', probe: 'positive control: a user identity connects', observed: 'no user identity could initialize in the survey', detail: 'positive control failed: a refusal of the client-only identity proves nothing', exchanges: ctx.transcript.numbersFor('survey') }];
  const controlFailed = connected.length === 0;

  let headers: Record<string, string>;
  try {
    headers = await ctx.identity(name);
  } catch (err) {
    items.push({ outcome: 'not-assessed', probe: `${name} (client only) connects`, detail: `its credentials could not be had: ${ctx.redactor.text((err as Error).message)}` });
    return { finding: 'the client-only identity could not be resolved', remediation: REMEDIATION, evidence: items };
  }

  const probe = `${name} (client credential, no user) connects`;
  ctx.step('BND-03', probe);
  const mark = ctx.mark();
  const p = await tryConnect(ctx, headers);
  const j = judgeRefusal(p);
  const base: EvidenceItem = { outcome: j.outcome, probe, expected: 'refused (401/403)', observed: observedOf(p), exchanges: ctx.since(mark), ...(j.detail ? { detail: j.detail } : {}) };
  if (j.outcome === 'ok') {
    items.push(controlFailed ? { ...base, outcome: 'not-assessed', detail: ['positive control failed', j.detail].filter(Boolean).join('; ') } : base);
  } else if (j.outcome === 'not-assessed') {
    items.push(base);
  } else {
    items.push({ ...base, outcome: 'info', detail: 'connected without a user: judged by what it lists and serves' });
    items.push(...await whatItGets(ctx, name, headers));
  }
  return {
    finding: summarize(items, 'a client without a user was refused', 'a client without a user was served'),
    remediation: REMEDIATION,
    evidence: items,
  };
}

/** A client-only session: its tool list must be empty and a safe call must be denied. */
async function whatItGets(ctx: ReviewContext, name: string, headers: Record<string, string>): Promise<EvidenceItem[]> {
  ctx.step('BND-03', `${name}: open a session and list tools`);
  const mark = ctx.mark();
  let conn: McpConn;
  try {
    conn = await connectAs(ctx, headers);
  } catch (err) {
    const o = outcomeOfError(err);
    return [{ outcome: o.kind === 'denied' ? 'ok' : 'not-assessed', probe: `${name}: MCP session`, expected: 'refused, or no tools', observed: ctx.redactor.text(o.detail), exchanges: ctx.since(mark) }];
  }
  const items: EvidenceItem[] = [];
  try {
    let listed: string[] | undefined;
    try {
      listed = (await listTools(conn)).map((t) => t.name);
      items.push(listed.length
        ? { outcome: 'bad', probe: `${name}: tools/list`, expected: 'no tools', observed: `${listed.length} tool(s): ${listed.slice(0, 10).join(', ')}`, exchanges: ctx.since(mark) }
        : { outcome: 'ok', probe: `${name}: tools/list`, expected: 'no tools', observed: 'no tools', exchanges: ctx.since(mark) });
    } catch (err) {
      const o = outcomeOfError(err);
      items.push({ outcome: o.kind === 'denied' ? 'ok' : 'not-assessed', probe: `${name}: tools/list`, expected: 'no tools, or refused', observed: ctx.redactor.text(o.detail), exchanges: ctx.since(mark) });
    }
    items.push(await safeCall(ctx, name, conn, listed ?? []));
  } finally {
    await conn.close();
  }
  return items;
}

async function safeCall(ctx: ReviewContext, name: string, conn: McpConn, listed: string[]): Promise<EvidenceItem> {
  const users = Object.values(ctx.facts.toolsByIdentity).flat();
  const tool = [...listed, ...users, ...ctx.profile.safeToCall].find((t) => ctx.isSafe(t));
  if (!tool) return { outcome: 'not-assessed', probe: `${name}: a safe tool call`, detail: 'no tool is marked safe to call: add one to the profile (safeToCall)' };
  const args = ctx.profile.examples[tool] ?? ctx.profile.crossUser.find((c) => c.call.tool === tool)?.call.arguments ?? {};
  const probe = `${name}: tools/call ${tool}`;
  ctx.step('BND-03', probe);
  const mark = ctx.mark();
  const o = await callTool(ctx, conn, tool, args);
  const observed = `${o.kind}: ${ctx.redactor.text(o.detail)}`;
  if (o.kind === 'denied') return { outcome: 'ok', probe, expected: 'denied', observed, exchanges: ctx.since(mark) };
  if (o.kind === 'allowed') return { outcome: 'bad', probe, expected: 'denied', observed, detail: 'a tool call was served to a client with no user', exchanges: ctx.since(mark) };
  return { outcome: 'not-assessed', probe, expected: 'denied', observed, detail: 'the call failed without a recognisable refusal', exchanges: ctx.since(mark) };
}
