import { randomBytes } from 'node:crypto';
import { bearerChallenge, type Challenge } from '../challenge.js';
import type { ReviewContext } from '../context.js';
import { bearerOf } from '../credentials.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { observedOf, noTarget, sendRaw, summarize, tryConnect, withBearer, withoutBearer, type ProbeReply } from './auth-probes.js';

const REMEDIATION = 'Serve RFC 9728 metadata at /.well-known/oauth-protected-resource<path> with `resource` equal to the MCP URL and the authorization servers listed; answer a missing credential with 401 and `WWW-Authenticate: Bearer resource_metadata="…"` (no error code, RFC 6750 §3.1) and an invalid token with 401 `error="invalid_token"`.';

/**
 * BND-11: a client that knows nothing but the URL can find out how to
 * authenticate (RFC 9728 discovery from the 401 challenge), and the
 * challenges say the right thing for "no token" and "bad token".
 */
export async function bnd11(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { ...noTarget(), remediation: REMEDIATION };
  const items: EvidenceItem[] = [];
  const profileBearer = await profileUsesBearer(ctx);

  ctx.step('BND-11', 'unauthenticated request: the 401 challenge');
  let mark = ctx.mark();
  const bare = await tryConnect(ctx, {});
  const bareExchanges = ctx.since(mark);
  const challenge = bearerChallenge(bare.reply?.headers.get('www-authenticate'));
  const usesBearer = challenge !== undefined || profileBearer;
  if (!usesBearer) {
    const reason = 'the target sends no Bearer challenge and no profile identity uses a bearer token: it does not use bearer authentication, so RFC 9728 discovery does not apply';
    return { status: 'n/a', finding: reason, reason, remediation: REMEDIATION, evidence: [{ outcome: 'n/a', probe: 'unauthenticated request', observed: observedOf(bare), detail: reason, exchanges: bareExchanges }] };
  }
  items.push(...challengeItems(bare, challenge, bareExchanges));

  ctx.step('BND-11', 'RFC 9728 protected-resource metadata');
  mark = ctx.mark();
  const found = await findMetadata(ctx);
  const metaExchanges = ctx.since(mark);
  items.push(...metadataItems(ctx, found, metaExchanges));
  if (challenge?.params.resource_metadata) {
    ctx.step('BND-11', 'the challenge\'s resource_metadata URL');
    mark = ctx.mark();
    const item = await challengeMetadataItem(ctx, challenge.params.resource_metadata, found);
    const fetched = ctx.since(mark);
    // The same URL as the document above is not fetched twice: that fetch is the evidence.
    items.push({ ...item, exchanges: [...bareExchanges, ...(fetched.length ? fetched : metaExchanges)] });
  }

  items.push(await garbageTokenItem(ctx));
  return {
    finding: summarize(items, 'metadata is served and consistent; challenges are well formed', 'discovery or challenges are wrong'),
    remediation: REMEDIATION,
    evidence: items,
  };
}

async function profileUsesBearer(ctx: ReviewContext): Promise<boolean> {
  for (const name of ctx.userNames()) {
    try {
      if (bearerOf(await ctx.identity(name))) return true;
    } catch {
      // an identity that cannot be had says nothing about the target
    }
  }
  return false;
}

function challengeItems(bare: ProbeReply, challenge: Challenge | undefined, exchanges: number[]): EvidenceItem[] {
  const probe = 'unauthenticated request';
  const observed = observedOf(bare);
  const status = bare.reply?.status;
  if (!bare.reply) return [{ outcome: 'not-assessed', probe, observed, exchanges }];
  if (status !== undefined && status >= 200 && status < 300) {
    return [{ outcome: 'not-assessed', probe, expected: '401 with a Bearer challenge', observed, detail: 'the target served the request (BND-01 judges that): no challenge to examine', exchanges }];
  }
  if (status !== 401 || !challenge) {
    return [{ outcome: 'bad', probe, expected: '401 with WWW-Authenticate: Bearer resource_metadata="…"', observed, detail: 'a client cannot discover how to authenticate (MCP authorization: 401 with a Bearer challenge)', exchanges }];
  }
  const items: EvidenceItem[] = [{ outcome: 'ok', probe: 'unauthenticated request: 401 with a Bearer challenge', expected: '401 with a Bearer challenge', observed, exchanges }];
  items.push(challenge.params.error === undefined
    ? { outcome: 'ok', probe: 'challenge to a request without a token carries no error code', expected: 'no error= (RFC 6750 §3.1)', observed: 'no error parameter', exchanges }
    // RFC 6750 §3.1 says SHOULD NOT (the SDK's requireBearerAuth does it): a deviation to report, not a hole in the boundary.
    : { outcome: 'warn', severity: 'low', probe: 'challenge to a request without a token carries no error code', expected: 'no error= (RFC 6750 §3.1)', observed: `error="${challenge.params.error}"`, detail: 'RFC 6750 §3.1: a request that carried no token SHOULD NOT get an error code in its challenge (a SHOULD, so a warning, not a failure)', exchanges });
  items.push(challenge.params.resource_metadata
    ? { outcome: 'ok', probe: 'challenge names the metadata document', expected: 'resource_metadata="<url>" (RFC 9728 §5.1)', observed: `resource_metadata="${challenge.params.resource_metadata}"`, exchanges }
    : { outcome: 'bad', probe: 'challenge names the metadata document', expected: 'resource_metadata="<url>" (RFC 9728 §5.1)', observed: 'no resource_metadata parameter', exchanges });
  return items;
}

interface Metadata {
  url: string;
  doc?: Record<string, unknown>;
  tried: string[];
}

/** RFC 9728 §3.1: the well-known segment goes between the host and the resource's path; the root form is the fallback for a path-less resource. */
export function metadataUrls(target: URL): string[] {
  const path = target.pathname.replace(/\/+$/, '');
  const root = `${target.origin}/.well-known/oauth-protected-resource`;
  return path ? [`${root}${path}`, root] : [root];
}

async function findMetadata(ctx: ReviewContext): Promise<Metadata> {
  const tried: string[] = [];
  for (const url of metadataUrls(ctx.target!)) {
    tried.push(url);
    const doc = await getDoc(ctx, url);
    if (doc) return { url, doc, tried };
  }
  return { url: tried[0]!, tried };
}

async function getDoc(ctx: ReviewContext, url: string): Promise<Record<string, unknown> | undefined> {
  const p = await sendRaw(ctx, { method: 'GET', url, headers: { accept: 'application/json' } });
  if (!p.reply || p.reply.status !== 200) return undefined;
  try {
    const v = JSON.parse(p.reply.text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    // Not JSON: no document, which the caller reports (the reply is in the transcript).
    return undefined;
  }
}

function bareUrl(u: string): string | undefined {
  try {
    const url = new URL(u);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    // Not a URL: it compares equal to nothing, and the caller reports the URL itself.
    return undefined;
  }
}

/** Whether the document's `resource` names this target; the legacy SSE URL sits below its resource. */
function resourceMatches(ctx: ReviewContext, resource: unknown): { ok: boolean; note?: string } {
  if (typeof resource !== 'string') return { ok: false };
  const r = bareUrl(resource);
  const t = bareUrl(ctx.target!.href)!;
  if (r === t) return { ok: true };
  if (r && ctx.inputs.transport === 'sse' && t.startsWith(`${r}/`)) return { ok: true, note: 'the resource is the MCP URL the legacy SSE endpoint sits below' };
  return { ok: false };
}

function metadataItems(ctx: ReviewContext, m: Metadata, exchanges: number[]): EvidenceItem[] {
  if (!m.doc) {
    return [{ outcome: 'bad', probe: 'RFC 9728 metadata document', expected: '200 JSON at the well-known URL', observed: `no JSON document at ${m.tried.join(' or ')}`, exchanges }];
  }
  const items: EvidenceItem[] = [{ outcome: 'ok', probe: 'RFC 9728 metadata document', expected: '200 JSON at the well-known URL', observed: `served at ${m.url}`, exchanges }];
  const match = resourceMatches(ctx, m.doc.resource);
  items.push({
    outcome: match.ok ? 'ok' : 'bad', probe: 'metadata `resource` names the target', expected: ctx.target!.href,
    observed: typeof m.doc.resource === 'string' ? m.doc.resource : 'no resource field', exchanges,
    ...(match.note ? { detail: match.note } : match.ok ? {} : { detail: 'RFC 9728 §3.3: a client must discard metadata whose resource differs from the URL it was fetched for' }),
  });
  const servers = m.doc.authorization_servers;
  const good = Array.isArray(servers) && servers.length > 0 && servers.every((s) => typeof s === 'string' && /^https?:\/\//.test(s));
  items.push({ outcome: good ? 'ok' : 'bad', probe: 'metadata lists authorization servers', expected: 'a non-empty authorization_servers array of issuer URLs', observed: Array.isArray(servers) ? servers.map(String).join(', ') || '(empty)' : 'no authorization_servers field', exchanges });
  const methods = m.doc.bearer_methods_supported;
  if (Array.isArray(methods) && methods.includes('query')) {
    items.push({ outcome: 'info', probe: 'metadata bearer_methods_supported', observed: methods.map(String).join(', '), detail: 'advertises tokens in the query string, which MCP authorization forbids (BND-02 tests whether it is honoured)', exchanges });
  }
  return items;
}

async function challengeMetadataItem(ctx: ReviewContext, url: string, found: Metadata): Promise<EvidenceItem> {
  const probe = 'the challenge\'s resource_metadata resolves to this resource\'s metadata';
  const expected = `a document whose resource is ${ctx.target!.href}`;
  if (found.doc && bareUrl(url) === bareUrl(found.url)) {
    const match = resourceMatches(ctx, found.doc.resource);
    return { outcome: match.ok ? 'ok' : 'bad', probe, expected, observed: `the same document (${found.url})` };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The evidence says what is wrong: the URL, as the server gave it.
    return { outcome: 'bad', probe, expected, observed: `not an absolute URL: ${url}` };
  }
  const doc = await getDoc(ctx, parsed.href);
  if (!doc) return { outcome: 'bad', probe, expected, observed: `no JSON document at ${parsed.href}` };
  const match = resourceMatches(ctx, doc.resource);
  return { outcome: match.ok ? 'ok' : 'bad', probe, expected, observed: `resource: ${typeof doc.resource === 'string' ? doc.resource : '(none)'}`, ...(match.note ? { detail: match.note } : {}) };
}

/**
 * A garbage bearer token with the client's other credentials (an API key)
 * kept, so the refusal is about the token: 401 with error="invalid_token".
 * Without a profile the refusal may be for the missing client credential,
 * so only a positive answer counts then.
 */
async function garbageTokenItem(ctx: ReviewContext): Promise<EvidenceItem> {
  const probe = 'garbage bearer token: 401 with error="invalid_token"';
  const expected = '401 with WWW-Authenticate: Bearer error="invalid_token"';
  let others: Record<string, string> = {};
  let withProfile = false;
  const name = ctx.userNames().find((n) => ctx.facts.toolsByIdentity[n] !== undefined) ?? ctx.userNames()[0];
  if (name) {
    try {
      others = withoutBearer(await ctx.identity(name));
      withProfile = true;
    } catch {
      // judged as without a profile
    }
  }
  const garbage = randomBytes(32).toString('base64url');
  ctx.redactor.add(garbage);
  ctx.step('BND-11', probe);
  const mark = ctx.mark();
  const p = await tryConnect(ctx, withBearer(others, garbage));
  const exchanges = ctx.since(mark);
  const observed = observedOf(p);
  const challenge = bearerChallenge(p.reply?.headers.get('www-authenticate'));
  const note = withProfile ? `sent with ${name}'s other headers` : 'no profile identity: sent without any client credential';
  if (p.reply?.status === 401 && challenge?.params.error === 'invalid_token') return { outcome: 'ok', probe, expected, observed, detail: note, exchanges };
  if (!p.reply) return { outcome: 'not-assessed', probe, expected, observed, exchanges };
  if (p.reply.status >= 200 && p.reply.status < 300) return { outcome: 'bad', probe, expected, observed, detail: `the garbage token was accepted; ${note}`, exchanges };
  if (!withProfile) return { outcome: 'not-assessed', probe, expected, observed, detail: `${note}: the refusal may be for the missing client credential; add identities to the profile`, exchanges };
  return { outcome: 'bad', probe, expected, observed, detail: `RFC 6750 §3.1: an invalid token gets 401 with error="invalid_token"; ${note}`, exchanges };
}
