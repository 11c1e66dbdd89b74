import { decodeJwt } from 'jose';
import { credentialFingerprint } from '../../shared/credential-fingerprint.js';
import { bearerOf } from '../credentials.js';
import type { ReviewContext } from '../context.js';
import { callTool, connectAs, type CallOutcome } from '../mcp.js';
import { newSightings, readObserver, shortFingerprint, type Observer, type ObservedCredential } from '../observer.js';
import { staticDownstreamEvidence } from '../static/downstream.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { outcomeLine, reasonOf } from './user-probes.js';

/** Users tried: each costs a session, a call and a few observer reads. */
const MAX_USERS = 4;
/** The downstream may hear about a call a little after the call returns (a stream it opens, a session it closes): read until two reads agree. */
const SETTLE_MS = 150;
const SETTLE_READS = 4;

const REMEDIATION = 'Call downstream systems with a credential derived for the user (RFC 8693 token exchange, a gateway-signed user assertion, or a per-user process), never one service account and never the client\'s own token passed through.';

interface UserWindow {
  user: string;
  call?: CallOutcome;
  /** Why the call could not be made or watched. */
  failed?: string;
  seen: ObservedCredential[];
  exchanges: number[];
}

/**
 * BND-09: as each user, the profile's downstream call is made between two
 * reads of the reviewer's observer; what reached the downstream in that
 * window must be neither the caller's own credential nor one shared with
 * another user, and should name the user. Plus the config's strategies.
 */
export async function bnd09(ctx: ReviewContext): Promise<CheckOutcome> {
  const evidence: EvidenceItem[] = [...staticDownstreamEvidence(ctx)];
  const ds = ctx.profile.downstream;
  if (!ds && !evidence.length) {
    const reason = ctx.target
      ? 'the profile has no downstream observer: add profile.downstream (observer url and the safe call that reaches it), or give --config'
      : 'no --target given and no --config: add profile.downstream and --target, or give --config';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [] };
  }
  if (!ctx.target) evidence.push({ outcome: 'not-assessed', probe: 'what the downstream receives per user', detail: 'no --target given' });
  else if (!ds) evidence.push({ outcome: 'not-assessed', probe: 'what the downstream receives per user', detail: 'the profile has no downstream observer: add profile.downstream' });
  else evidence.push(...await blackBox(ctx, ds));
  const bad = evidence.filter((e) => e.outcome === 'bad');
  const finding = bad.length
    ? `downstream credentials are not user-scoped: ${bad.map((e) => e.detail ?? e.probe).join('; ')}`
    : evidence.some((e) => e.outcome === 'ok') ? 'downstream systems receive credentials derived per user' : 'whether downstream credentials are user-scoped could not be judged: see the evidence';
  return { finding, remediation: REMEDIATION, evidence };
}

async function blackBox(ctx: ReviewContext, ds: NonNullable<ReviewContext['profile']['downstream']>): Promise<EvidenceItem[]> {
  const probe = 'what the downstream receives per user';
  const users = ctx.userNames().slice(0, MAX_USERS);
  if (!users.length) return [{ outcome: 'not-assessed', probe, detail: 'the profile has no user identity: add profile.identities' }];
  if (!ctx.isSafe(ds.call.tool)) return [{ outcome: 'not-assessed', probe, detail: `${ds.call.tool} is not in safeToCall: the review does not call it` }];
  const known = await knownCredentials(ctx);
  const subjects = await tokenSubjects(ctx, users);
  const mark = ctx.mark();
  ctx.step('BND-09', 'read the downstream observer');
  let seen: ObservedCredential[];
  try {
    // Settled: what earlier sessions (the survey's, say) still send downstream must not land in the first user's window.
    seen = await settledRead(ctx, ds.observer);
  } catch (err) {
    return [{ outcome: 'not-assessed', probe, detail: `the downstream observer could not be read: ${reasonOf(ctx, err)}`, exchanges: ctx.since(mark) }];
  }
  const windows: UserWindow[] = [];
  for (const user of users) {
    const w = await userWindow(ctx, ds.observer, callsFor(ctx, ds.call, user), user, seen);
    seen = w.after ?? seen;
    windows.push(w.window);
  }
  return [...windows.map((w) => judgeUser(ctx, w, windows, known, subjects.get(w.user))), ...sharingItems(windows)];
}

type Call = { tool: string; arguments: Record<string, unknown> };

/**
 * The profile's downstream call first; when policy refuses it to this user
 * (one rep may not read another's customer), the crossUser calls this user
 * owns, which the profile already says she may make.
 */
function callsFor(ctx: ReviewContext, call: Call, user: string): Call[] {
  const owned = ctx.profile.crossUser.filter((c) => c.owner === user && ctx.isSafe(c.call.tool)).map((c) => c.call);
  return [call, ...owned];
}

async function userWindow(ctx: ReviewContext, observer: Observer, calls: Call[], user: string, before: ObservedCredential[]): Promise<{ window: UserWindow; after?: ObservedCredential[] }> {
  const mark = ctx.mark();
  const window: UserWindow = { user, seen: [], exchanges: [] };
  ctx.step('BND-09', `${user} calls ${calls[0]!.tool}, the observer watching`);
  try {
    const conn = await connectAs(ctx, await ctx.identity(user));
    try {
      for (const call of calls) {
        window.call = await callTool(ctx, conn, call.tool, call.arguments);
        if (window.call.kind === 'allowed') break;
      }
    } finally {
      // Closing inside the window: whatever the session's end sends downstream is this user's too.
      await conn.close();
    }
  } catch (err) {
    window.failed = `${user} could not connect: ${reasonOf(ctx, err)}`;
  }
  let after: ObservedCredential[] | undefined;
  try {
    after = await settledRead(ctx, observer);
    window.seen = newSightings(before, after);
  } catch (err) {
    window.failed ??= `the downstream observer could not be read: ${reasonOf(ctx, err)}`;
  }
  window.exchanges = ctx.since(mark);
  return { window, ...(after ? { after } : {}) };
}

async function settledRead(ctx: ReviewContext, observer: Observer): Promise<ObservedCredential[]> {
  let last = await readObserver(ctx, observer);
  for (let i = 1; i < SETTLE_READS; i++) {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const next = await readObserver(ctx, observer);
    if (next.length === last.length) return next;
    last = next;
  }
  return last;
}

/** Fingerprints of every credential the review holds (each header value, and a bearer without its scheme), to recognise one arriving downstream. */
async function knownCredentials(ctx: ReviewContext): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of ctx.identityNames()) {
    let headers: Record<string, string>;
    try {
      headers = await ctx.identity(name);
    } catch {
      // Credentials the review could not get cannot arrive downstream either; the survey reported why.
      continue;
    }
    for (const [h, v] of Object.entries(headers)) out.set(credentialFingerprint(v).toLowerCase(), `${name}'s ${h}`);
  }
  return out;
}

function judgeUser(ctx: ReviewContext, w: UserWindow, all: UserWindow[], known: Map<string, string>, tokenSub: string | undefined): EvidenceItem {
  const probe = `${w.user}: credentials the downstream received for ${w.user}'s call`;
  const observed = w.seen.length ? [...new Set(w.seen.map((s) => `${shortFingerprint(s.fingerprint)}${s.claims?.sub ? ` sub=${ctx.redactor.text(s.claims.sub)}` : ''}`))].join(', ') : 'nothing new';
  const base = { probe, observed, exchanges: w.exchanges, expected: 'a credential for this user alone: not a credential the client sent, not one another user\'s calls carried' };
  const passed = w.seen.map((s) => known.get(s.fingerprint.toLowerCase())).filter((x): x is string => x !== undefined);
  if (passed.length) return { ...base, outcome: 'bad', detail: `client token passed through: the downstream received ${[...new Set(passed)].join(', ')}` };
  if (w.failed) return { ...base, outcome: 'not-assessed', detail: w.failed };
  if (w.call?.kind !== 'allowed') return { ...base, outcome: 'not-assessed', detail: `positive control failed: ${w.user}'s call was ${w.call ? outcomeLine(ctx, w.call) : 'not made'}, so it may never have reached the downstream` };
  if (!w.seen.length) return { ...base, outcome: 'not-assessed', detail: 'the observer saw nothing new after the call: the call did not reach the observed downstream' };
  const others = all.filter((o) => o.user !== w.user && o.seen.length);
  const mine = new Set(w.seen.map((s) => s.fingerprint.toLowerCase()));
  const subs = new Set(w.seen.map((s) => s.claims?.sub).filter((s): s is string => typeof s === 'string'));
  if (others.some((o) => o.seen.some((s) => mine.has(s.fingerprint.toLowerCase()) || (s.claims?.sub !== undefined && subs.has(s.claims.sub))))) {
    return { ...base, outcome: 'bad', detail: `shared credential: ${w.user}'s calls and another user's reached the downstream as the same credential or subject (a service account)` };
  }
  if (!subs.size) return { ...base, outcome: 'not-assessed', detail: 'the credential differs from other users\' but names no subject the observer could read, so whether it is the user\'s cannot be told' };
  const note = tokenSub === undefined ? '' : subs.has(tokenSub) ? `; the subject matches the sub of ${w.user}'s own token` : `; ${w.user}'s own token has another sub (the downstream may name users differently)`;
  const alone = others.length ? '' : '; no other user\'s credential to compare with';
  return { ...base, outcome: 'ok', detail: `a credential of its own naming subject ${[...subs].map((s) => ctx.redactor.text(s)).join(', ')}${note}${alone}` };
}

/** Whether users share a credential can only be told with two users who both reached the downstream. */
function sharingItems(windows: UserWindow[]): EvidenceItem[] {
  const reached = windows.filter((w) => w.seen.length && w.call?.kind === 'allowed');
  if (reached.length >= 2) return [];
  return [{ outcome: 'not-assessed', probe: 'whether users share one downstream credential', detail: windows.length < 2 ? 'only one user identity: add a second user to profile.identities' : 'fewer than two users\' calls reached the downstream' }];
}

/** Each user's own token subject, read without verifying, to say whether the downstream credential names the same person. */
async function tokenSubjects(ctx: ReviewContext, users: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const u of users) {
    try {
      const sub = decodeJwt(bearerOf(await ctx.identity(u)) ?? '').sub;
      if (sub) m.set(u, sub);
    } catch {
      // not a JWT: nothing to compare with
    }
  }
  return m;
}
