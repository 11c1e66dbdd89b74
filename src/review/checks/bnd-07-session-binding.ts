import type { ReviewContext } from '../context.js';
import { connectAs, legacyEndpoint, type McpConn, type RawReply } from '../mcp.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { postOnce, reasonOf } from './user-probes.js';

const REMEDIATION = 'Bind each session id to the (client, issuer, subject) that created it; authenticate every request again and treat a mismatch exactly like an unknown session (404). Possession of a session id must never authenticate.';

/** Where the replayed requests go and what they must carry besides credentials. */
interface SessionTarget {
  url: URL;
  headers: Record<string, string>;
  legacy: boolean;
}

/**
 * BND-07: user A opens a session; the session is then replayed with A's
 * headers (control: must answer), with user B's headers and with none (both
 * must be refused).
 */
export async function bnd07(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { status: 'not-assessed', finding: 'no --target given', reason: 'no --target given', remediation: REMEDIATION, evidence: [] };
  const users = ctx.userNames();
  const a = users.find((u) => ctx.facts.toolsByIdentity[u]) ?? users[0];
  if (!a) {
    const reason = 'the profile has no user identity: add profile.identities (two users for the cross-user part)';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [] };
  }
  const b = users.find((u) => u !== a);
  const evidence: EvidenceItem[] = [];
  const mark = ctx.mark();
  ctx.step('BND-07', `${a} opens a session`);
  let conn: McpConn;
  try {
    conn = await connectAs(ctx, await ctx.identity(a));
  } catch (err) {
    const reason = `positive control failed: ${a} could not open a session: ${reasonOf(ctx, err)}`;
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [{ outcome: 'not-assessed', probe: `${a} opens a session`, detail: reason, exchanges: ctx.since(mark) }] };
  }
  try {
    const target = await sessionTarget(ctx, conn, a);
    if (typeof target === 'string') {
      return { status: 'n/a', finding: target, reason: target, remediation: REMEDIATION, evidence: [{ outcome: 'n/a', probe: `${a} opens a session`, detail: target, exchanges: ctx.since(mark) }] };
    }
    const control = await replay(ctx, target, await ctx.identity(a), `control: ${a}'s own headers on ${a}'s session`);
    const controlOk = control.reply !== undefined && answered(control.reply, target.legacy);
    evidence.push({
      outcome: controlOk ? 'ok' : 'not-assessed', probe: `${a}'s own headers on ${a}'s session (positive control)`, expected: target.legacy ? '2xx (accepted)' : '2xx with a tools/list result',
      observed: control.observed, ...(controlOk ? {} : { detail: 'positive control failed: the session did not answer its own user, so a refusal for anyone else would prove nothing' }), exchanges: control.exchanges,
    });
    if (!b) {
      evidence.push({ outcome: 'not-assessed', probe: `another user's headers on ${a}'s session`, detail: 'only one user identity: add a second user to profile.identities' });
    } else if (!ctx.facts.toolsByIdentity[b]) {
      evidence.push({ outcome: 'not-assessed', probe: `${b}'s headers on ${a}'s session`, detail: `positive control failed: ${b} could not open a session of their own in the survey, so a refusal would prove nothing` });
    } else if (controlOk) {
      let headers: Record<string, string> | undefined;
      try {
        headers = await ctx.identity(b);
      } catch (err) {
        evidence.push({ outcome: 'not-assessed', probe: `${b}'s headers on ${a}'s session`, detail: `${b}'s credentials could not be had: ${reasonOf(ctx, err)}` });
      }
      if (headers) evidence.push(judge(await replay(ctx, target, headers, `${b}'s headers on ${a}'s session`), target.legacy, `${b}'s headers on ${a}'s session`));
    } else {
      evidence.push({ outcome: 'not-assessed', probe: `${b}'s headers on ${a}'s session`, detail: 'positive control failed (see above)' });
    }
    if (controlOk) evidence.push(judge(await replay(ctx, target, {}, `no credentials on ${a}'s session`), target.legacy, `no credentials on ${a}'s session`));
    else evidence.push({ outcome: 'not-assessed', probe: `no credentials on ${a}'s session`, detail: 'positive control failed (see above)' });
  } finally {
    await conn.close();
  }
  const bad = evidence.filter((e) => e.outcome === 'bad');
  const finding = bad.length
    ? `a session was usable by someone other than its user: ${bad.map((e) => e.probe).join('; ')}`
    : evidence.some((e) => e.outcome === 'ok' && !e.probe.includes('positive control')) ? 'replayed session ids were refused to other users and to unauthenticated requests' : 'session binding could not be judged: see the evidence';
  return { finding, remediation: REMEDIATION, evidence };
}

/** Where to replay A's session: the Streamable URL with Mcp-Session-Id, or the legacy POST endpoint that carries the session in its query. */
async function sessionTarget(ctx: ReviewContext, conn: McpConn, a: string): Promise<SessionTarget | string> {
  if (ctx.inputs.transport === 'sse') {
    const endpoint = legacyEndpoint(conn);
    if (!endpoint) return `the legacy stream gave ${a} no POST endpoint`;
    return { url: endpoint, headers: {}, legacy: true };
  }
  if (!conn.sessionId) return 'the server issues no session ids (stateless): there is no session to bind';
  const version = (conn.client.transport as { protocolVersion?: string } | undefined)?.protocolVersion;
  return { url: ctx.target!, headers: { 'mcp-session-id': conn.sessionId, ...(version ? { 'mcp-protocol-version': version } : {}) }, legacy: false };
}

interface Replay { reply?: RawReply; observed: string; exchanges: number[] }

let replayIds = 0;

async function replay(ctx: ReviewContext, target: SessionTarget, credentials: Record<string, string>, label: string): Promise<Replay> {
  const mark = ctx.mark();
  ctx.step('BND-07', label);
  // Ids of its own, so a reply that lands on A's stream cannot be mistaken for one of the SDK client's requests.
  const body = { jsonrpc: '2.0', id: `bnd-07-${++replayIds}`, method: 'tools/list', params: {} };
  const sent = await postOnce(ctx, { url: target.url, headers: { ...credentials, ...target.headers }, body });
  return { ...sent, exchanges: ctx.since(mark) };
}

/** The owner's replay counts as answered: Streamable needs the result in the reply; legacy answers on the stream, so acceptance is all the POST shows. */
function answered(r: RawReply, legacy: boolean): boolean {
  if (r.status < 200 || r.status > 299) return false;
  return legacy || r.messages.some((m) => 'result' in m);
}

function judge(rep: Replay, legacy: boolean, probe: string): EvidenceItem {
  const expected = legacy ? 'refused (any non-2xx)' : 'refused: 401, 403 or 404';
  const base = { probe, expected, observed: rep.observed, exchanges: rep.exchanges };
  const r = rep.reply;
  if (!r) return { ...base, outcome: 'not-assessed', detail: 'no answer, so neither accepted nor refused' };
  if (r.status >= 200 && r.status <= 299) {
    if (legacy || r.messages.some((m) => 'result' in m)) return { ...base, outcome: 'bad', detail: legacy ? 'the legacy endpoint accepted the request: its answer goes to the session owner\'s stream' : 'the session answered someone other than its user' };
    return { ...base, outcome: 'ok', detail: 'answered 2xx but without a result' };
  }
  if ([401, 403, 404].includes(r.status) || (legacy && r.status < 500)) return { ...base, outcome: 'ok' };
  if (r.status < 500) return { ...base, outcome: 'ok', detail: `refused with ${r.status}, not 401/403/404` };
  return { ...base, outcome: 'not-assessed', detail: `server error ${r.status}: neither a clear refusal nor an answer` };
}
