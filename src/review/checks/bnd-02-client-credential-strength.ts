import { randomBytes, randomInt } from 'node:crypto';
import { looksLikeSecret, nameLooksSecret } from '../../shared/secret-shapes.js';
import type { ReviewContext } from '../context.js';
import { bearerOf } from '../credentials.js';
import { staticTlsEvidence } from '../static/tls.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { accepted, observedOf, judgeRefusal, refusalItem, summarize, surveyedUser, tryConnect, withBearer, withoutBearer } from './auth-probes.js';

const REMEDIATION = 'Refuse unknown, wrong and revoked client credentials with 401; take bearer tokens from the Authorization header only, never from the query string (RFC 6750 §2.3 and the MCP authorization spec); keep TLS certificate verification on for every connection the server makes.';

/** Headers that are not credentials even when their values look random. */
const NOT_CREDENTIALS = new Set(['authorization', 'accept', 'content-type', 'mcp-protocol-version', 'user-agent', 'origin', 'host']);

/**
 * BND-02: a credential that is almost right — garbage, another key of the
 * same shape, revoked, or the right token in the wrong place — gets nothing.
 * Each probe changes one thing about a user's working headers, after those
 * headers were shown to work (positive control).
 */
export async function bnd02(ctx: ReviewContext): Promise<CheckOutcome> {
  const items: EvidenceItem[] = [...staticItems(ctx)];
  if (ctx.target?.protocol === 'https:') items.push({ outcome: 'info', probe: 'target scheme', observed: 'https', detail: 'the target is served over TLS (BND-12 judges transport)' });
  items.push(...await blackBox(ctx));
  return {
    finding: summarize(items, 'wrong, revoked and misplaced credentials were refused', 'a weak credential was accepted'),
    remediation: REMEDIATION,
    evidence: items,
  };
}

function staticItems(ctx: ReviewContext): EvidenceItem[] {
  try {
    return staticTlsEvidence(ctx);
  } catch (err) {
    return [{ outcome: 'not-assessed', probe: 'TLS verification in the reviewed configuration', detail: `could not be read: ${ctx.redactor.text((err as Error).message)}` }];
  }
}

async function blackBox(ctx: ReviewContext): Promise<EvidenceItem[]> {
  const probe = 'black-box credential probes';
  if (!ctx.target) return [{ outcome: 'not-assessed', probe, detail: 'no --target given' }];
  const name = surveyedUser(ctx);
  if (!name) return [{ outcome: 'not-assessed', probe, detail: ctx.hasProfile ? 'the profile has no user identity: add one (identities)' : 'no profile: add identities to a profile (--profile)' }];
  let headers: Record<string, string>;
  try {
    headers = await ctx.identity(name);
  } catch (err) {
    return [{ outcome: 'not-assessed', probe, detail: `the credentials of ${name} could not be had: ${ctx.redactor.text((err as Error).message)}` }];
  }

  const items: EvidenceItem[] = [];
  ctx.step('BND-02', `positive control: ${name} connects with its own headers`);
  const mark = ctx.mark();
  const control = await tryConnect(ctx, headers);
  const ok = accepted(control);
  items.push({ outcome: ok ? 'ok' : 'not-assessed', probe: `positive control: ${name} connects`, expected: 'accepted', observed: observedOf(control), exchanges: ctx.since(mark), ...(ok ? {} : { detail: 'positive control failed: the refusals below prove nothing' }) });
  const controlFailed = ok ? undefined : `${name} could not connect with its own headers`;
  const bearer = bearerOf(headers);

  if (bearer) {
    const garbage = randomBytes(Math.max(24, Math.ceil(bearer.length * 0.75))).toString('base64url').slice(0, Math.max(32, bearer.length));
    ctx.redactor.add(garbage);
    items.push(await refusalItem(ctx, 'BND-02', 'garbage bearer token (other headers kept)', () => tryConnect(ctx, withBearer(headers, garbage)), { want401: true, controlFailed }));
  } else {
    items.push({ outcome: 'n/a', probe: 'garbage bearer token', detail: `${name} sends no bearer token` });
  }

  const keyNames = Object.keys(headers).filter((k) => !NOT_CREDENTIALS.has(k) && (nameLooksSecret(k) || /key|auth|credential/i.test(k) || looksLikeSecret(headers[k]!))).slice(0, 3);
  if (!keyNames.length) items.push({ outcome: 'n/a', probe: 'wrong API key of the same shape', detail: `${name} sends no credential header besides Authorization` });
  for (const k of keyNames) {
    const wrong = sameShape(headers[k]!);
    ctx.redactor.add(wrong);
    items.push(await refusalItem(ctx, 'BND-02', `wrong ${k} of the same shape (other headers kept)`, () => tryConnect(ctx, { ...headers, [k]: wrong }), { controlFailed }));
  }

  items.push(bearer ? await queryItem(ctx, headers, bearer, controlFailed) : { outcome: 'n/a', probe: 'bearer token in the query string', detail: `${name} sends no bearer token` });
  items.push(await revokedItem(ctx, headers, controlFailed));
  return items;
}

/**
 * The valid token moved from the header to `?access_token=`. A 2xx proves
 * the query token was used only if the same request without it is refused,
 * so that is asked only then.
 */
async function queryItem(ctx: ReviewContext, headers: Record<string, string>, bearer: string, controlFailed: string | undefined): Promise<EvidenceItem> {
  const probe = 'valid bearer token in the query string (?access_token=), no Authorization header';
  const url = new URL(ctx.target!.href);
  url.searchParams.set('access_token', bearer);
  const item = await refusalItem(ctx, 'BND-02', probe, () => tryConnect(ctx, withoutBearer(headers), { url }), { controlFailed });
  if (item.outcome !== 'bad') return item;
  ctx.step('BND-02', 'the same request without the query token');
  const mark = ctx.mark();
  const bare = await tryConnect(ctx, withoutBearer(headers));
  const exchanges = [...(item.exchanges ?? []), ...ctx.since(mark)];
  if (judgeRefusal(bare).outcome === 'bad') {
    return { ...item, outcome: 'not-assessed', exchanges, detail: `the target also answers without any bearer token (${observedOf(bare)}): nothing shows the query token was used (BND-03 judges requests without a user)` };
  }
  return { ...item, exchanges, detail: `accepted with the token in the query string, refused without it (${observedOf(bare)})` };
}

/** The profile's revoked credential, over the user's other headers so only that credential differs. */
async function revokedItem(ctx: ReviewContext, headers: Record<string, string>, controlFailed: string | undefined): Promise<EvidenceItem> {
  const probe = 'revoked credential (profile.revoked)';
  if (!ctx.profile.revoked) return { outcome: 'not-assessed', probe, detail: 'the profile has no revoked credential: add one (revoked)' };
  let revoked: Record<string, string>;
  try {
    revoked = await ctx.credential('revoked')!;
  } catch (err) {
    return { outcome: 'not-assessed', probe, detail: `the revoked credential could not be had: ${ctx.redactor.text((err as Error).message)}` };
  }
  return refusalItem(ctx, 'BND-02', probe, () => tryConnect(ctx, { ...headers, ...revoked }), { controlFailed, note: `sent with the user's other headers; replaced: ${Object.keys(revoked).join(', ')}` });
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';

/** Another value of the same shape: a known prefix (`bhk_`, `sk-`) kept, each letter and digit replaced by a random one of its class. */
export function sameShape(value: string): string {
  const prefix = /^[A-Za-z]{1,8}[_-]/.exec(value)?.[0] ?? '';
  const pick = (set: string) => set[randomInt(set.length)]!;
  for (;;) {
    const rest = [...value.slice(prefix.length)].map((c) => (LOWER.includes(c) ? pick(LOWER) : UPPER.includes(c) ? pick(UPPER) : DIGITS.includes(c) ? pick(DIGITS) : c)).join('');
    const out = prefix + rest;
    if (out !== value) return out;
    if (!/[A-Za-z0-9]/.test(rest)) return `${out}x`;
  }
}
