import type { CheckId } from '../catalog.js';
import type { ReviewContext } from '../context.js';
import { bearerOf } from '../credentials.js';
import { clip, initializeBody, LATEST_PROTOCOL, rawRequest, type RawReply } from '../mcp.js';
import type { EvidenceItem } from '../types.js';

/**
 * Authentication probes shared by BND-01, -02, -03, -04 and -11: one
 * "may I connect?" request per credential variant, and one way of judging
 * the answer, so every check calls the same thing a refusal.
 */

/** How long a GET stream is watched: long enough for the status line, never longer (an accepted stream stays open). */
export const STREAM_PEEK_MS = 1500;

export interface ProbeReply {
  reply?: RawReply;
  /** The request failed without an HTTP answer. */
  error?: string;
}

/**
 * One attempt to connect with `headers`: streamable → POST initialize;
 * legacy SSE → GET the stream. A session the target opened is closed again
 * (DELETE), so probes do not leave processes behind on it.
 */
export async function tryConnect(ctx: ReviewContext, headers: Record<string, string>, o: { url?: URL } = {}): Promise<ProbeReply> {
  try {
    if (ctx.inputs.transport === 'sse') {
      return { reply: await rawRequest(ctx, { method: 'GET', url: o.url, headers: { ...headers, accept: 'text/event-stream' }, readMs: STREAM_PEEK_MS }) };
    }
    const reply = await rawRequest(ctx, { method: 'POST', url: o.url, headers, body: initializeBody() });
    await closeSession(ctx, reply, headers, o.url);
    return { reply };
  } catch (err) {
    return { error: ctx.redactor.text((err as Error).message ?? String(err)) };
  }
}

/** A hand-made request whose failure (timeout, refused connection) is an answer to judge, not an exception. */
export async function sendRaw(ctx: ReviewContext, o: Parameters<typeof rawRequest>[1]): Promise<ProbeReply> {
  try {
    return { reply: await rawRequest(ctx, o) };
  } catch (err) {
    return { error: ctx.redactor.text((err as Error).message ?? String(err)) };
  }
}

export async function closeSession(ctx: ReviewContext, reply: RawReply, headers: Record<string, string>, url?: URL): Promise<void> {
  const sid = reply.headers.get('mcp-session-id');
  if (!sid || reply.status < 200 || reply.status >= 300) return;
  ctx.redactor.add(sid);
  // Best effort: the probe is already judged; a session the server keeps is not what it was about.
  await rawRequest(ctx, { method: 'DELETE', url, headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': LATEST_PROTOCOL } }).catch(() => undefined);
}

/** A JSON-RPC result in the body: the request was served. */
export function hasResult(reply: RawReply): boolean {
  return reply.messages.some((m) => 'result' in m);
}

export function hasRpcError(reply: RawReply): boolean {
  return reply.messages.some((m) => 'error' in m);
}

export function isEventStream(reply: RawReply): boolean {
  return (reply.headers.get('content-type') ?? '').includes('text/event-stream');
}

/** "401 (Bearer challenge)", "200 with a result" — what a reader of the report needs of an answer. */
export function observedOf(p: ProbeReply): string {
  if (!p.reply) return `no HTTP answer: ${p.error ?? 'unknown error'}`;
  const r = p.reply;
  const parts = [`HTTP ${r.status}`];
  const challenge = r.headers.get('www-authenticate');
  if (challenge) parts.push(`WWW-Authenticate: ${clip(challenge, 200)}`);
  if (hasResult(r)) parts.push('with a JSON-RPC result');
  else if (hasRpcError(r)) parts.push('with a JSON-RPC error');
  else if (r.status >= 200 && r.status < 300 && isEventStream(r)) parts.push('an event stream opened');
  return parts.join(', ');
}

export interface Judged {
  outcome: EvidenceItem['outcome'];
  detail?: string;
}

/**
 * Whether an answer is a refusal. 401/403 → ok (403 with a note when a 401
 * is what RFC 6750 asks for a bad token); another 4xx → ok with a note (no
 * challenge); 405 → ok (nothing served there); 2xx with a result or an open
 * stream → bad; 2xx carrying only a JSON-RPC error → ok with a note; 5xx or
 * no answer → not-assessed: neither refused nor served.
 */
export function judgeRefusal(p: ProbeReply, o: { want401?: boolean } = {}): Judged {
  if (!p.reply) return { outcome: 'not-assessed', detail: `no HTTP answer: ${p.error ?? 'unknown error'}` };
  const { status } = p.reply;
  if (status === 401) return { outcome: 'ok' };
  if (status === 403) return o.want401 ? { outcome: 'ok', detail: 'refused with 403; RFC 6750 §3.1 asks for 401 invalid_token when the token itself is bad' } : { outcome: 'ok' };
  if (status === 405) return { outcome: 'ok', detail: 'method not allowed: nothing is served there' };
  if (status >= 400 && status < 500) return { outcome: 'ok', detail: `refused with ${status}, not 401/403: no authentication challenge` };
  if (status >= 500) return { outcome: 'not-assessed', detail: `server error ${status}: neither refused nor served (a credential error should be a 401)` };
  if (status >= 300) return { outcome: 'not-assessed', detail: `redirected (${status})` };
  if (hasResult(p.reply)) return { outcome: 'bad', detail: `accepted: HTTP ${status} with a JSON-RPC result` };
  if (hasRpcError(p.reply)) return { outcome: 'ok', detail: `refused in a JSON-RPC error at HTTP ${status}, not with 401/403` };
  if (isEventStream(p.reply)) return { outcome: 'bad', detail: `accepted: HTTP ${status}, an event stream was opened` };
  return { outcome: 'bad', detail: `accepted: HTTP ${status}` };
}

/** The positive-control reading of the same answer: did the rightful request get in? */
export function accepted(p: ProbeReply): boolean {
  if (!p.reply) return false;
  const { status } = p.reply;
  if (status < 200 || status >= 300) return false;
  return hasResult(p.reply) || (isEventStream(p.reply) && !hasRpcError(p.reply));
}

/**
 * One refusal probe as an evidence item: `ctx.step` labels it, the answer
 * is judged, and a failed positive control turns an ok into not-assessed.
 */
export async function refusalItem(ctx: ReviewContext, check: CheckId, probe: string, send: () => Promise<ProbeReply>, o: { expected?: string; want401?: boolean; controlFailed?: string; note?: string } = {}): Promise<EvidenceItem> {
  ctx.step(check, probe);
  const mark = ctx.mark();
  let p: ProbeReply;
  try {
    p = await send();
  } catch (err) {
    // Building the probe failed (a key type the forge cannot mimic): nothing was judged.
    return { outcome: 'not-assessed', probe, detail: `the probe could not be built: ${ctx.redactor.text((err as Error).message ?? String(err))}`, exchanges: ctx.since(mark) };
  }
  const j = judgeRefusal(p, { want401: o.want401 });
  const item: EvidenceItem = {
    outcome: j.outcome,
    probe,
    expected: o.expected ?? (o.want401 ? 'refused with 401' : 'refused (401/403)'),
    observed: observedOf(p),
    exchanges: ctx.since(mark),
  };
  const details = [j.detail, o.note].filter(Boolean);
  if (o.controlFailed && j.outcome === 'ok') {
    item.outcome = 'not-assessed';
    details.unshift(`positive control failed: ${o.controlFailed}`);
  }
  if (details.length) item.detail = details.join('; ');
  return item;
}

/**
 * The first user identity that connected in the survey (the positive control
 * already happened there), else the first user identity at all.
 */
export function surveyedUser(ctx: ReviewContext): string | undefined {
  const users = ctx.userNames();
  return users.find((n) => ctx.facts.toolsByIdentity[n] !== undefined) ?? users[0];
}

/** The first user identity whose bearer is a JWT. */
export async function jwtUser(ctx: ReviewContext): Promise<{ name: string; headers: Record<string, string>; token: string } | undefined> {
  const users = ctx.userNames();
  const ordered = [...users.filter((n) => ctx.facts.toolsByIdentity[n] !== undefined), ...users.filter((n) => ctx.facts.toolsByIdentity[n] === undefined)];
  for (const name of ordered) {
    let headers: Record<string, string>;
    try {
      headers = await ctx.identity(name);
    } catch {
      // The survey has reported this identity's failure; the next one may have a JWT.
      continue;
    }
    const token = bearerOf(headers);
    if (token && /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) return { name, headers, token };
  }
  return undefined;
}

/** The identity's headers with its bearer swapped for `token` (every other header, an API key say, kept). */
export function withBearer(headers: Record<string, string>, token: string): Record<string, string> {
  return { ...headers, authorization: `Bearer ${token}` };
}

export function withoutBearer(headers: Record<string, string>): Record<string, string> {
  const { authorization: _a, ...rest } = headers;
  return rest;
}

/** One line naming the items that went wrong, for a check's finding. */
export function summarize(items: EvidenceItem[], good: string, badPrefix: string): string {
  const bad = items.filter((i) => i.outcome === 'bad');
  if (bad.length) return `${badPrefix}: ${bad.map((i) => i.probe).join('; ')}`;
  const warn = items.filter((i) => i.outcome === 'warn');
  if (warn.length) return `SHOULD-level deviation (a warning, not a failure): ${warn.map((i) => `${i.probe} (${i.observed ?? ''})`).join('; ')}`;
  const open = items.filter((i) => i.outcome === 'not-assessed');
  // Nothing judged: the finding is why, so the runner's reason reads right.
  if (open.length && !items.some((i) => i.outcome === 'ok')) return open.map((i) => i.detail ?? i.probe).join('; ');
  if (open.length) return `${good}, but ${open.length} part(s) could not be judged: ${open.map((i) => i.probe).join('; ')}`;
  return good;
}

/** "no --target given" as an outcome, for the black-box checks. */
export function noTarget(): { status: 'not-assessed'; finding: string; reason: string; evidence: EvidenceItem[] } {
  return { status: 'not-assessed', finding: 'no --target given', reason: 'no --target given', evidence: [] };
}
