import type { ReviewContext } from '../context.js';
import { initializeBody, rawRequest, type RawReply } from '../mcp.js';
import { isLoopbackHost } from '../static/tls.js';
import { staticTransportEvidence } from '../static/transport.js';
import { openStream, type StreamProbe } from '../stream-probe.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { postOnce, reasonOf } from './user-probes.js';

/** A page on any other site: what a DNS-rebinding or cross-site attack sends. */
const EVIL_ORIGIN = 'http://evil.invalid';

const REMEDIATION = 'Refuse requests whose Origin is not an allowed origin (403) on every HTTP endpoint, serve the MCP endpoint over TLS unless it listens on loopback only, and build stdio children\'s environment from an allow-list.';

/**
 * BND-12: a hostile Origin must be refused while the same request without
 * it succeeds; the target must use TLS unless it is on loopback; plus what
 * stdio children inherit (static, from --command/--config).
 */
export async function bnd12(ctx: ReviewContext): Promise<CheckOutcome> {
  const evidence: EvidenceItem[] = [];
  if (!ctx.target) {
    evidence.push({ outcome: 'not-assessed', probe: `request with Origin: ${EVIL_ORIGIN}`, detail: 'no --target given' });
    evidence.push({ outcome: 'not-assessed', probe: 'TLS on the target', detail: 'no --target given' });
  } else {
    evidence.push(...await originEvidence(ctx));
    evidence.push(tlsEvidence(ctx.target));
  }
  evidence.push(...staticTransportEvidence(ctx));
  const bad = evidence.filter((e) => e.outcome === 'bad');
  const finding = bad.length
    ? `transport gaps: ${bad.map((e) => e.probe).join('; ')}`
    : evidence.some((e) => e.outcome === 'ok') ? 'hostile origins are refused and the transport is protected' : 'transport hardening could not be judged: see the evidence';
  return { finding, remediation: REMEDIATION, evidence };
}

function tlsEvidence(target: URL): EvidenceItem {
  const probe = 'TLS on the target';
  if (target.protocol === 'https:') return { outcome: 'ok', probe, observed: 'https' };
  if (isLoopbackHost(target.hostname)) return { outcome: 'n/a', probe, observed: `${target.protocol.replace(':', '')} on ${target.hostname}`, detail: 'loopback: the traffic never leaves the host' };
  return { outcome: 'bad', probe, expected: 'https', observed: `${target.protocol.replace(':', '')} on ${target.hostname}`, detail: 'plain HTTP beyond loopback: credentials and data cross the network readable by anyone on the path' };
}

async function originEvidence(ctx: ReviewContext): Promise<EvidenceItem[]> {
  const probe = `initialize with Origin: ${EVIL_ORIGIN}`;
  const users = ctx.userNames();
  const user = users.find((u) => ctx.facts.toolsByIdentity[u]) ?? users[0];
  if (!user) return [{ outcome: 'not-assessed', probe, detail: 'the profile has no user identity: add profile.identities (the refusal must be for the Origin, not for missing credentials)' }];
  let headers: Record<string, string>;
  try {
    headers = await ctx.identity(user);
  } catch (err) {
    return [{ outcome: 'not-assessed', probe, detail: `${user}'s credentials could not be had: ${reasonOf(ctx, err)}` }];
  }
  return ctx.inputs.transport === 'sse' ? legacyOrigin(ctx, headers) : streamableOrigin(ctx, headers, probe);
}

async function streamableOrigin(ctx: ReviewContext, headers: Record<string, string>, probe: string): Promise<EvidenceItem[]> {
  const mark = ctx.mark();
  ctx.step('BND-12', 'positive control: initialize without Origin');
  const control = await postOnce(ctx, { headers, body: initializeBody('bnd-12-control') });
  await endSession(ctx, headers, control.reply);
  ctx.step('BND-12', probe);
  const attack = await postOnce(ctx, { headers: { ...headers, origin: EVIL_ORIGIN }, body: initializeBody('bnd-12-origin') });
  await endSession(ctx, headers, attack.reply);
  return [judge(probe, control, attack, ctx.since(mark))];
}

async function legacyOrigin(ctx: ReviewContext, headers: Record<string, string>): Promise<EvidenceItem[]> {
  const out: EvidenceItem[] = [];
  let mark = ctx.mark();
  const maxMs = Math.min(ctx.profile.limits.requestTimeoutMs * 3, Math.max(1000, ctx.remainingMs()));
  ctx.step('BND-12', 'positive control: SSE stream without Origin');
  const control = await stream(ctx, headers, maxMs);
  try {
    const endpoint = control.probe && control.probe.status === 200 ? await control.probe.nextEvent(ctx.profile.limits.requestTimeoutMs) : undefined;
    ctx.step('BND-12', `SSE stream with Origin: ${EVIL_ORIGIN}`);
    const attack = await stream(ctx, { ...headers, origin: EVIL_ORIGIN }, ctx.profile.limits.requestTimeoutMs);
    attack.probe?.close();
    const controlOk = endpoint?.event === 'endpoint';
    out.push(judge(`SSE stream with Origin: ${EVIL_ORIGIN}`, { ok: controlOk, observed: control.observed }, { reply: attack.probe ? { status: attack.probe.status } : undefined, observed: attack.observed }, ctx.since(mark)));
    if (!controlOk || !endpoint) {
      out.push({ outcome: 'not-assessed', probe: `POST to the session endpoint with Origin: ${EVIL_ORIGIN}`, detail: 'positive control failed: no stream announced an endpoint' });
      return out;
    }
    mark = ctx.mark();
    const url = new URL(endpoint.data, ctx.target);
    const legacyInit = (id: string) => {
      const body = initializeBody(id);
      (body.params as Record<string, unknown>).protocolVersion = '2024-11-05';
      return body;
    };
    // The hostile POST first: were it second, a refusal could be the server declining a repeated initialize.
    ctx.step('BND-12', `POST to the session endpoint with Origin: ${EVIL_ORIGIN}`);
    const hostile = await postOnce(ctx, { url, headers: { ...headers, origin: EVIL_ORIGIN }, body: legacyInit('bnd-12-origin') });
    ctx.step('BND-12', 'positive control: POST to the session endpoint without Origin');
    const plain = await postOnce(ctx, { url, headers, body: legacyInit('bnd-12-control') });
    out.push(judge(`POST to the session endpoint with Origin: ${EVIL_ORIGIN}`, plain, hostile, ctx.since(mark)));
  } finally {
    control.probe?.close();
  }
  return out;
}

interface Sent { reply?: Pick<RawReply, 'status'> & Partial<RawReply>; observed: string; ok?: boolean }


async function stream(ctx: ReviewContext, headers: Record<string, string>, maxMs: number): Promise<{ probe?: StreamProbe; observed: string }> {
  try {
    const probe = await openStream(ctx, { headers, maxMs });
    return { probe, observed: `${probe.status} ${probe.headers.get('content-type') ?? ''}`.trim() };
  } catch (err) {
    return { observed: `no answer: ${reasonOf(ctx, err)}` };
  }
}

/** A session the probe opened is closed again, so the review leaves nothing behind. */
async function endSession(ctx: ReviewContext, headers: Record<string, string>, reply: Sent['reply']): Promise<void> {
  const sid = reply?.headers?.get('mcp-session-id');
  if (!sid) return;
  // Best effort: the probe is already judged; a session the server keeps is not what it was about.
  await rawRequest(ctx, { method: 'DELETE', headers: { ...headers, 'mcp-session-id': sid } }).catch(() => undefined);
}

function judge(probe: string, control: Sent, attack: Sent, exchanges: number[]): EvidenceItem {
  const expected = '403, while the same request without Origin succeeds';
  const controlOk = control.ok ?? (control.reply !== undefined && control.reply.status >= 200 && control.reply.status < 300);
  const observed = `${attack.observed} (without Origin: ${control.observed})`;
  const base = { probe, expected, observed, exchanges };
  const s = attack.reply?.status;
  if (s !== undefined && s >= 200 && s < 300) return { ...base, outcome: 'bad', detail: 'a request from a foreign origin was served: a web page the user visits (or a DNS-rebinding attack) can drive this server' };
  if (!controlOk) return { ...base, outcome: 'not-assessed', detail: 'positive control failed: the request without Origin did not succeed, so a refusal would prove nothing' };
  if (s === 403) return { ...base, outcome: 'ok' };
  if (s !== undefined && s < 500) return { ...base, outcome: 'ok', detail: `refused with ${s}, not 403` };
  return { ...base, outcome: 'not-assessed', detail: s === undefined ? 'no answer' : `server error ${s}: neither a refusal nor an answer` };
}
