import type { ReviewContext } from '../context.js';
import { connectAs, legacyEndpoint, initializeBody, LATEST_PROTOCOL } from '../mcp.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { noTarget, refusalItem, sendRaw, STREAM_PEEK_MS, summarize, surveyedUser, tryConnect } from './auth-probes.js';

const REMEDIATION = 'Require a client credential on every method of every MCP endpoint (POST, the GET stream, DELETE, the legacy SSE stream and its message endpoint) and answer a missing one with 401 and a WWW-Authenticate challenge, before any session lookup or upstream call.';

/**
 * BND-01: nothing is served to a caller without credentials. A refusal
 * needs no positive control, but one is reported (a user connected in the
 * survey), so a reader can tell "refused everyone" from "refused strangers".
 */
export async function bnd01(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { ...noTarget(), remediation: REMEDIATION };
  const items: EvidenceItem[] = [controlItem(ctx)];
  const step = (probe: string, send: Parameters<typeof refusalItem>[3]) => refusalItem(ctx, 'BND-01', probe, send);

  if (ctx.inputs.transport === 'streamable') {
    items.push(await step('unauthenticated POST initialize', () => tryConnect(ctx, {})));
    items.push(await step('unauthenticated POST tools/list without a session', () => sendRaw(ctx, {
      method: 'POST', headers: { 'mcp-protocol-version': LATEST_PROTOCOL }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} },
    })));
    items.push(await step('unauthenticated GET (Accept: text/event-stream)', () => sendRaw(ctx, {
      method: 'GET', headers: { accept: 'text/event-stream', 'mcp-protocol-version': LATEST_PROTOCOL }, readMs: STREAM_PEEK_MS,
    })));
    items.push(await step('unauthenticated DELETE of a made-up session', () => sendRaw(ctx, {
      method: 'DELETE', headers: { 'mcp-session-id': 'behalf-review-no-such-session', 'mcp-protocol-version': LATEST_PROTOCOL },
    })));
  } else {
    items.push(await step('unauthenticated GET of the SSE stream', () => tryConnect(ctx, {})));
    items.push(await step('unauthenticated POST initialize to the SSE URL', () => sendRaw(ctx, { method: 'POST', body: initializeBody() })));
    items.push(await legacyMessagesItem(ctx));
  }

  const served = items.filter((i) => i.outcome === 'bad');
  return {
    finding: summarize(items, 'every unauthenticated request was refused', `${served.length} unauthenticated request(s) were served`),
    remediation: REMEDIATION,
    evidence: items,
  };
}

function controlItem(ctx: ReviewContext): EvidenceItem {
  const probe = 'positive control: a profile identity connects';
  if (!ctx.hasProfile || ctx.userNames().length === 0) {
    return { outcome: 'info', probe, detail: ctx.hasProfile ? 'the profile has no user identity: no positive control, and none is needed for a refusal' : 'no profile: no positive control, and none is needed for a refusal' };
  }
  const connected = ctx.userNames().filter((n) => ctx.facts.toolsByIdentity[n] !== undefined);
  if (connected.length) return { outcome: 'ok', probe, expected: 'an identity of the profile initializes', observed: `${connected.join(', ')} initialized and listed tools in the survey`, exchanges: ctx.transcript.numbersFor('survey') };
  return { outcome: 'not-assessed', probe, expected: 'an identity of the profile initializes', observed: 'no identity of the profile could initialize in the survey', detail: 'positive control failed: the refusals below may refuse everyone; check the profile\'s identities', exchanges: ctx.transcript.numbersFor('survey') };
}

/**
 * The legacy message endpoint is only known from an open stream: open one
 * as a user, then post to it without credentials. A 202 there means the
 * message was taken (its answer would go to the user's stream).
 */
async function legacyMessagesItem(ctx: ReviewContext): Promise<EvidenceItem> {
  const probe = 'unauthenticated POST tools/list to the legacy message endpoint';
  const name = surveyedUser(ctx);
  if (!name) return { outcome: 'not-assessed', probe, detail: 'the message endpoint is only announced on an authenticated stream: add a user identity to the profile (identities)' };
  ctx.step('BND-01', `${name}: open the SSE stream to learn the message endpoint`);
  const mark = ctx.mark();
  let conn;
  try {
    conn = await connectAs(ctx, await ctx.identity(name));
  } catch (err) {
    return { outcome: 'not-assessed', probe, detail: `positive control failed: ${name} could not open the SSE stream (${ctx.redactor.text((err as Error).message)})`, exchanges: ctx.since(mark) };
  }
  try {
    const endpoint = legacyEndpoint(conn);
    if (!endpoint) return { outcome: 'not-assessed', probe, detail: 'the stream announced no message endpoint', exchanges: ctx.since(mark) };
    const item = await refusalItem(ctx, 'BND-01', probe, () => sendRaw(ctx, { method: 'POST', url: endpoint, body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} } }));
    return { ...item, exchanges: ctx.since(mark) };
  } finally {
    await conn.close();
  }
}
