import { bearerOf } from '../credentials.js';
import type { ReviewContext } from '../context.js';
import { initializeBody, LATEST_PROTOCOL } from '../mcp.js';
import { openStream, tokenExpiry, type StreamProbe } from '../stream-probe.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { postOnce, reasonOf } from './user-probes.js';
import { revocationProbe } from './bnd-08-revocation.js';

/** How long after `exp` a stream may live, and after which an expired token must be refused: timer latency and a little clock difference, not a skew window. */
const GRACE_MS = 5000;
/** The late request goes this long after exp: the stream's end is awaited up to GRACE_MS, but a request needs no more than the clock to have moved past exp. */
const LATE_MS = 1000;

const REMEDIATION = 'End every long-lived stream (Streamable GET, legacy SSE) when the token that opened it expires or is revoked, and refuse requests carrying an expired token (401 invalid_token) — keep any clock-skew allowance to seconds.';

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

/**
 * BND-08: a short-lived token (fresh from profile.shortLived) opens a
 * standing stream; the stream must end by exp + 5 s, and a request carrying
 * the token after that must be refused with 401. Then, with profile.revoke,
 * a revoked user's session and stream must end (bnd-08-revocation.ts).
 */
export async function bnd08(ctx: ReviewContext): Promise<CheckOutcome> {
  const stop = (reason: string, status: 'not-assessed' | 'n/a' = 'not-assessed', evidence: EvidenceItem[] = []): CheckOutcome => ({ status, finding: reason, reason, remediation: REMEDIATION, evidence });
  if (!ctx.target) return stop('no --target given');
  const source = ctx.profile.shortLived;
  if (!source) return stop('the profile has no short-lived credential: add profile.shortLived (a command printing a fresh token that expires within limits.streamWaitSeconds)');

  ctx.step('BND-08', 'a fresh short-lived token');
  let headers: Record<string, string>;
  try {
    headers = await shortLivedHeaders(ctx, source);
  } catch (err) {
    return stop(`profile.shortLived could not be had: ${reasonOf(ctx, err)}`);
  }
  const exp = tokenExpiry(bearerOf(headers));
  if (exp === undefined) return stop('profile.shortLived gives no bearer JWT with an exp claim: the review cannot tell when the server should stop trusting it');
  const expMs = exp * 1000;
  const life = expMs - Date.now();
  const waitLimit = ctx.profile.limits.streamWaitSeconds * 1000;
  if (life <= 0) return stop('the token from profile.shortLived had already expired when it was obtained');
  if (life > waitLimit) return stop(`the token from profile.shortLived lives ${Math.ceil(life / 1000)} s, more than limits.streamWaitSeconds (${ctx.profile.limits.streamWaitSeconds} s): give a shorter-lived token or raise the limit`);
  const judgeBy = expMs + GRACE_MS;
  const needed = judgeBy + ctx.profile.limits.requestTimeoutMs - Date.now();
  if (needed > ctx.remainingMs()) return stop(`the review's time limit leaves ${Math.max(0, Math.floor(ctx.remainingMs() / 1000))} s, the stream wait needs ${Math.ceil(needed / 1000)} s: raise limits.timeSeconds`);

  const evidence = ctx.inputs.transport === 'sse' ? await legacy(ctx, headers, expMs, judgeBy) : await streamable(ctx, headers, expMs, judgeBy);
  if (ctx.inputs.transport !== 'sse') evidence.push(await revocationProbe(ctx));
  const bad = evidence.filter((e) => e.outcome === 'bad');
  const finding = bad.length
    ? bad.map((e) => e.detail ?? e.probe).join('; ')
    : evidence.some((e) => e.outcome === 'ok') ? `the token's expiry ended what it had opened and it was refused afterwards${evidence.at(-1)?.outcome === 'ok' ? '; so did a revocation' : ''}` : 'stream revalidation could not be judged: see the evidence';
  return { finding, remediation: REMEDIATION, evidence };
}

/**
 * The short-lived credential may be a bare token; the API key or other
 * client headers then come from the first user identity, so the request
 * differs from a working one in the token alone.
 */
async function shortLivedHeaders(ctx: ReviewContext, source: NonNullable<ReviewContext['profile']['shortLived']>): Promise<Record<string, string>> {
  const own = await ctx.resolve(source);
  if (Object.keys(own).some((k) => k !== 'authorization')) return own;
  const first = ctx.userNames()[0];
  if (!first) return own;
  const rest = Object.fromEntries(Object.entries(await ctx.identity(first)).filter(([k]) => k !== 'authorization'));
  return { ...rest, ...own };
}

async function streamable(ctx: ReviewContext, headers: Record<string, string>, expMs: number, judgeBy: number): Promise<EvidenceItem[]> {
  const evidence: EvidenceItem[] = [];
  let mark = ctx.mark();
  ctx.step('BND-08', 'initialize with the short-lived token');
  const init = await postOnce(ctx, { headers, body: initializeBody('bnd-08-init') });
  const sessionId = init.reply?.headers.get('mcp-session-id') ?? undefined;
  const initOk = init.reply !== undefined && init.reply.status >= 200 && init.reply.status < 300;
  if (!initOk || !sessionId) {
    const why = !initOk ? `initialize was answered ${init.observed}` : 'initialize gave no Mcp-Session-Id';
    evidence.push({ outcome: 'not-assessed', probe: 'initialize with the short-lived token (positive control)', expected: '2xx with an Mcp-Session-Id', observed: init.observed, detail: `positive control failed: ${why}`, exchanges: ctx.since(mark) });
    return evidence;
  }
  const version = (init.reply?.messages.find((m) => 'result' in m)?.result as { protocolVersion?: string } | undefined)?.protocolVersion ?? LATEST_PROTOCOL;
  const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': version };
  ctx.step('BND-08', 'notifications/initialized');
  await postOnce(ctx, { headers: { ...headers, ...session }, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  evidence.push({ outcome: 'info', probe: 'initialize with the short-lived token (positive control)', observed: init.observed, detail: `a session was opened ${Math.round((expMs - Date.now()) / 1000)} s before the token expires`, exchanges: ctx.since(mark) });

  mark = ctx.mark();
  ctx.step('BND-08', 'GET event stream with the short-lived token');
  evidence.push(await watch(ctx, { ...headers, ...session }, expMs, judgeBy, mark, 'standing GET stream opened with the short-lived token'));

  evidence.push(await afterExpiry(ctx, { headers: { ...headers, ...session }, body: { jsonrpc: '2.0', id: 'bnd-08-late', method: 'tools/list', params: {} } }, expMs, 'tools/list on the session with the token after exp'));
  return evidence;
}

async function legacy(ctx: ReviewContext, headers: Record<string, string>, expMs: number, judgeBy: number): Promise<EvidenceItem[]> {
  const evidence: EvidenceItem[] = [];
  const mark = ctx.mark();
  ctx.step('BND-08', 'legacy SSE stream with the short-lived token');
  let stream: StreamProbe;
  try {
    stream = await openStream(ctx, { headers, maxMs: judgeBy - Date.now() + 2000 });
  } catch (err) {
    evidence.push({ outcome: 'not-assessed', probe: 'legacy SSE stream with the short-lived token', detail: `positive control failed: the stream could not be opened: ${reasonOf(ctx, err)}`, exchanges: ctx.since(mark) });
    return evidence;
  }
  try {
    const endpointEvent = stream.status === 200 && stream.isStream ? await stream.nextEvent(ctx.profile.limits.requestTimeoutMs) : undefined;
    if (endpointEvent?.event !== 'endpoint') {
      evidence.push({ outcome: 'not-assessed', probe: 'legacy SSE stream with the short-lived token', expected: '200 event stream with an endpoint event', observed: `${stream.status} ${stream.headers.get('content-type') ?? ''}${endpointEvent ? `, first event "${endpointEvent.event}"` : ''}`, detail: 'positive control failed: no working stream was opened', exchanges: ctx.since(mark) });
      return evidence;
    }
    const endpoint = new URL(endpointEvent.data, ctx.target);
    ctx.step('BND-08', 'initialize on the legacy session (positive control)');
    const body = initializeBody('bnd-08-init');
    // The legacy transport is the 2024-11-05 protocol.
    (body.params as Record<string, unknown>).protocolVersion = '2024-11-05';
    const init = await postOnce(ctx, { url: endpoint, headers, body });
    const initOk = init.reply !== undefined && init.reply.status >= 200 && init.reply.status < 300;
    evidence.push(await judgeStream(ctx, stream, expMs, judgeBy, mark, 'legacy SSE stream opened with the short-lived token'));
    if (!initOk) {
      evidence.push({ outcome: 'not-assessed', probe: 'ping on the legacy session with the token after exp', detail: `positive control failed: initialize before exp was answered ${init.observed}` });
      return evidence;
    }
    evidence.push(await afterExpiry(ctx, { url: endpoint, headers, body: { jsonrpc: '2.0', id: 'bnd-08-late', method: 'ping' } }, expMs, 'ping on the legacy session with the token after exp'));
  } finally {
    stream.close();
  }
  return evidence;
}

async function watch(ctx: ReviewContext, headers: Record<string, string>, expMs: number, judgeBy: number, mark: number, probe: string): Promise<EvidenceItem> {
  let stream: StreamProbe;
  try {
    stream = await openStream(ctx, { headers, maxMs: judgeBy - Date.now() + 2000 });
  } catch (err) {
    return { outcome: 'not-assessed', probe, detail: `the stream request failed: ${reasonOf(ctx, err)}`, exchanges: ctx.since(mark) };
  }
  try {
    if (stream.status === 405) return { outcome: 'n/a', probe, observed: '405', detail: 'no standing stream offered', exchanges: ctx.since(mark) };
    if (stream.status !== 200 || !stream.isStream) {
      return { outcome: 'not-assessed', probe, expected: '200 event stream (or 405: none offered)', observed: `${stream.status} ${stream.headers.get('content-type') ?? ''}`.trim(), detail: 'positive control failed: the valid token did not open a stream', exchanges: ctx.since(mark) };
    }
    return await judgeStream(ctx, stream, expMs, judgeBy, mark, probe);
  } finally {
    stream.close();
  }
}

async function judgeStream(ctx: ReviewContext, stream: StreamProbe, expMs: number, judgeBy: number, mark: number, probe: string): Promise<EvidenceItem> {
  const endedAt = await stream.waitForEnd(judgeBy);
  const expected = `the server ends the stream by exp + ${GRACE_MS / 1000} s`;
  const at = (t: number) => `${((t - expMs) / 1000).toFixed(1)} s ${t >= expMs ? 'after' : 'before'} exp`;
  if (endedAt === undefined) {
    stream.close();
    return { outcome: 'bad', probe, expected, observed: `still open ${at(Date.now())}`, detail: 'the stream outlived its token', exchanges: ctx.since(mark) };
  }
  return {
    outcome: 'ok', probe, expected, observed: `ended ${at(endedAt)}`,
    ...(endedAt < expMs - 1000 ? { detail: 'ended well before exp: the server does not hold this stream open (nothing outlives the token)' } : {}), exchanges: ctx.since(mark),
  };
}

/** A request with the token once it has expired (after the grace): must be 401; the request itself was shown to work before exp. */
async function afterExpiry(ctx: ReviewContext, o: { url?: URL; headers: Record<string, string>; body: unknown }, expMs: number, probe: string): Promise<EvidenceItem> {
  await sleepUntil(expMs + LATE_MS);
  const mark = ctx.mark();
  ctx.step('BND-08', probe);
  const r = await postOnce(ctx, o);
  const expected = `401 (the token expired ${LATE_MS / 1000} s ago)`;
  const base = { probe, expected, observed: r.observed, exchanges: ctx.since(mark) };
  if (!r.reply) return { ...base, outcome: 'not-assessed', detail: 'no answer' };
  const s = r.reply.status;
  if (s === 401) return { ...base, outcome: 'ok' };
  // Seconds of leeway on exp are common and allowed (RFC 7519 §4.1.4); whether exp is checked at all is BND-04's long-expired token. The stream itself is what this check judges.
  if (s >= 200 && s < 300) return { ...base, outcome: 'info', detail: `an expired token was still accepted ${LATE_MS / 1000} s after exp: the server allows a clock skew at least that long (BND-04 shows whether exp is checked at all)` };
  if (s < 500) return { ...base, outcome: 'ok', detail: `refused with ${s}, not 401: no challenge tells the client to get a fresh token` };
  return { ...base, outcome: 'not-assessed', detail: `server error ${s}: neither a refusal nor an answer` };
}

