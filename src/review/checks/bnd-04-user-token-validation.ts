import { readFileSync } from 'node:fs';
import type { JWTPayload } from 'jose';
import type { ReviewContext } from '../context.js';
import { bearerOf } from '../credentials.js';
import { algNone, badSignature, claimAttacks, hs256With, issuerKey, parseJwt, publicKeyTexts, reviewerKey, signJwt, unknownKid, type JwtHeader, type SigningKey } from '../forge.js';
import type { CheckOutcome, EvidenceItem } from '../types.js';
import { accepted, observedOf, noTarget, refusalItem, summarize, tryConnect, withBearer, jwtUser } from './auth-probes.js';
import { loadIssuerJwks } from './bnd-04-jwks.js';

const REMEDIATION = 'Verify every user token before use: the signature with the issuer\'s published keys only (no alg none, no HMAC keyed with a public key, no unknown kid), the exact configured issuer, this resource as audience (RFC 8707), exp and nbf, and the actor of an exchanged token; refuse anything else with 401 invalid_token.';

interface Attack {
  probe: string;
  make: () => Promise<string> | string;
  note?: string;
}

/**
 * BND-04: a real user token (the first user identity with a JWT bearer),
 * changed one way at a time, is refused each time — while the unchanged
 * token gets in (positive control). Claim changes are signed with the
 * issuer's own key when the profile gives it, so a refusal there proves the
 * claim is checked and not only the signature.
 */
export async function bnd04(ctx: ReviewContext): Promise<CheckOutcome> {
  if (!ctx.target) return { ...noTarget(), remediation: REMEDIATION };
  const user = await jwtUser(ctx);
  const parsed = user && parseJwt(user.token);
  if (!user || !parsed) {
    const reason = ctx.hasProfile ? 'no user identity of the profile sends a JWT bearer token: add one (identities with Authorization: Bearer <JWT>)' : 'no profile: add user identities with JWT bearer tokens (--profile)';
    return { status: 'not-assessed', finding: reason, reason, remediation: REMEDIATION, evidence: [] };
  }
  const { header, claims } = parsed;
  const items: EvidenceItem[] = [];

  ctx.step('BND-04', `positive control: ${user.name}'s token connects`);
  let mark = ctx.mark();
  const control = await tryConnect(ctx, user.headers);
  const controlOk = accepted(control);
  items.push({ outcome: controlOk ? 'ok' : 'not-assessed', probe: `positive control: ${user.name}'s valid token`, expected: 'accepted', observed: observedOf(control), exchanges: ctx.since(mark), ...(controlOk ? {} : { detail: 'positive control failed: the refusals below prove nothing' }) });
  const controlFailed = controlOk ? undefined : `${user.name}'s unchanged token was not accepted`;

  const send = (token: string) => {
    ctx.redactor.add(token);
    return tryConnect(ctx, withBearer(user.headers, token));
  };

  const claimSigner = await chooseClaimSigner(ctx, header, claims, send, items);

  ctx.step('BND-04', 'fetch the issuer\'s public keys');
  mark = ctx.mark();
  const jwks = await loadIssuerJwks(ctx, typeof claims.iss === 'string' ? claims.iss : undefined);
  const publicJwk = jwks.keys?.find((k) => header.kid !== undefined && k.kid === header.kid) ?? jwks.keys?.find((k) => k.kty === 'RSA' || k.kty === 'EC' || k.kty === 'OKP');
  const jwksExchanges = ctx.since(mark);

  const attacks: Attack[] = [
    { probe: 'alg none (unsigned token, same claims)', make: () => algNone(user.token) },
    { probe: 'unknown kid (signed by a key the issuer never published)', make: () => unknownKid(user.token) },
    { probe: 'bad signature (one signature character changed)', make: () => badSignature(user.token) },
  ];
  const now = Math.floor(Date.now() / 1000);
  const signed = (change: (c: JWTPayload) => JWTPayload) => () => signJwt(header, change(claims), claimSigner.key);
  attacks.push(
    { probe: 'expired token (exp an hour ago)', make: signed((c) => claimAttacks.expired(c, now)), note: claimSigner.note },
    { probe: 'token not yet valid (nbf in an hour)', make: signed((c) => claimAttacks.notYetValid(c, now)), note: claimSigner.note },
    { probe: 'wrong issuer (iss changed)', make: signed(claimAttacks.wrongIssuer), note: claimSigner.note },
    { probe: 'wrong audience (aud changed)', make: signed(claimAttacks.wrongAudience), note: claimSigner.note },
  );
  for (const a of attacks) items.push(await refusalItem(ctx, 'BND-04', a.probe, async () => send(await a.make()), { want401: true, controlFailed, note: a.note }));

  let texts: ReturnType<typeof publicKeyTexts> | undefined;
  try {
    texts = publicJwk && publicKeyTexts(publicJwk);
  } catch (err) {
    jwks.error = `the issuer's key could not be read: ${(err as Error).message}`;
  }
  if (texts) {
    for (const [what, secret] of [['PEM (SPKI)', texts.pem], ['JWK JSON', texts.jwkJson]] as const) {
      const item = await refusalItem(ctx, 'BND-04', `HS256 signed with the issuer's public key as ${what} (RS/HS confusion)`, () => send(hs256With(user.token, secret)), { want401: true, controlFailed });
      items.push({ ...item, exchanges: [...jwksExchanges, ...(item.exchanges ?? [])] });
    }
  } else {
    items.push({ outcome: 'not-assessed', probe: 'HS256 signed with the issuer\'s public key (RS/HS confusion)', detail: `the issuer's public key could not be had (${jwks.error ?? 'no usable key in the key set'}): add issuer.jwksUri to the profile`, exchanges: jwksExchanges });
  }

  items.push(await otherResourceItem(ctx, user.headers, controlFailed));

  if (claims.act !== undefined) {
    items.push(await refusalItem(ctx, 'BND-04', 'actor mismatch (act.sub changed)', async () => send(await signed(claimAttacks.actorMismatch)()), { want401: true, controlFailed, note: claimSigner.note }));
  } else {
    items.push({ outcome: 'n/a', probe: 'actor mismatch (act.sub changed)', detail: `${user.name}'s token carries no act claim (not an exchanged token)` });
  }
  items.push({ outcome: 'n/a', probe: 'replayed signed user assertion', detail: 'no signed user assertion in the profile' });

  return {
    finding: summarize(items, 'every forged or invalid user token was refused', 'forged or invalid user tokens were accepted'),
    remediation: REMEDIATION,
    evidence: items,
  };
}

/**
 * The key claim changes are signed with: the issuer's (issuer.signingKeyFile)
 * once a re-signed copy of the unchanged token is shown to be accepted;
 * otherwise a fresh reviewer key under the original kid.
 */
async function chooseClaimSigner(ctx: ReviewContext, header: JwtHeader, claims: JWTPayload, send: (t: string) => ReturnType<typeof tryConnect>, items: EvidenceItem[]): Promise<{ key: SigningKey; note: string }> {
  const alg = typeof header.alg === 'string' ? header.alg : 'RS256';
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  const reviewer = async (why: string) => ({ key: await reviewerKey(alg, kid), note: `signed with a reviewer key: the refusal may be the signature alone${why ? ` (${why})` : ''}` });
  const file = ctx.profile.issuer.signingKeyFile;
  if (!file) return reviewer('');
  const probe = 'positive control: the unchanged claims re-signed with issuer.signingKeyFile';
  let key: SigningKey;
  try {
    key = await issuerKey(JSON.parse(readFileSync(file, 'utf8')) as unknown, kid, alg);
  } catch (err) {
    const why = `issuer.signingKeyFile unusable: ${ctx.redactor.text((err as Error).message)}`;
    items.push({ outcome: 'not-assessed', probe, detail: why });
    return reviewer(why);
  }
  ctx.step('BND-04', probe);
  const mark = ctx.mark();
  const p = await send(await signJwt(header, claims, key));
  const ok = accepted(p);
  items.push({ outcome: ok ? 'ok' : 'not-assessed', probe, expected: 'accepted', observed: observedOf(p), exchanges: ctx.since(mark), ...(ok ? {} : { detail: 'positive control failed: claim changes are signed with a reviewer key instead' }) });
  if (!ok) return reviewer('a token re-signed with issuer.signingKeyFile was not accepted');
  return { key, note: 'signed with the issuer\'s own key (issuer.signingKeyFile): only the claim is wrong' };
}

/** A genuine token of the same issuer for another resource: the audience check, without any forgery. */
async function otherResourceItem(ctx: ReviewContext, headers: Record<string, string>, controlFailed: string | undefined): Promise<EvidenceItem> {
  const probe = 'valid token of the same issuer for another resource (profile.otherResource)';
  if (!ctx.profile.otherResource) return { outcome: 'not-assessed', probe, detail: 'the profile has no token for another resource: add one (otherResource)' };
  let other: Record<string, string>;
  try {
    other = await ctx.credential('otherResource')!;
  } catch (err) {
    return { outcome: 'not-assessed', probe, detail: `the other resource's token could not be had: ${ctx.redactor.text((err as Error).message)}` };
  }
  const bearer = bearerOf(other);
  const sent = bearer ? withBearer(headers, bearer) : { ...headers, ...other };
  return refusalItem(ctx, 'BND-04', probe, () => tryConnect(ctx, sent), { want401: true, controlFailed });
}
