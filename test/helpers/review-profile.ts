/**
 * A review profile (src/review/profile.ts) for one review server, with fresh
 * tokens from the shared dev IdP. The short-lived token is a command by
 * default: the review runs it right before the stream probe, so the ≈3 s
 * token is not dead before it is used.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import type { profileSchema } from '../../src/review/profile.js';
import type { ReviewEnv } from './review-env.js';
import { claimsOf, nowSeconds, signWith } from './auth-tokens.js';
import { REVIEW_TOOLS } from './review-crm.js';
import { tempDir } from './tmp.js';

export type ReviewProfileInput = z.input<typeof profileSchema>;

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

export async function reviewProfileFor(
  server: { url: string; origin: string },
  env: ReviewEnv,
  o: { shortLived?: 'command' | 'headers' } = {},
): Promise<ReviewProfileInput> {
  const [alice, bob, client, other, carol] = await Promise.all([
    env.userToken('alice', server.url),
    env.userToken('bob', server.url),
    env.clientToken(server.url),
    // Same issuer, same user, another resource: aud is all that is wrong with it.
    env.userToken('alice', `${server.origin}/other/mcp`),
    env.userToken('carol', server.url),
  ]);
  // The server's own revocation endpoint; {sub} becomes carol's subject, quoted (BND-08).
  const post = "fetch(process.argv[1], { method: 'POST' }).then((r) => process.exit(r.ok ? 0 : 1))";
  const revoke = {
    command: `"${process.execPath}" -e "${post}" ${server.origin}/revoke?sub={sub}`,
    user: bearer(carol),
  };
  const shortLived =
    o.shortLived === 'headers'
      ? bearer(await env.shortLivedToken('alice', server.url))
      : { command: env.shortLivedCommand('alice', server.url) };
  return {
    identities: { alice: bearer(alice), bob: bearer(bob), service: bearer(client) },
    clientOnly: 'service',
    revoked: bearer(await expiredCopy(alice, env)),
    otherResource: bearer(other),
    shortLived,
    revoke,
    issuer: { issuer: env.idp.issuer, jwksUri: env.idp.jwksUri, signingKeyFile: env.signingKeyFile },
    crossUser: [
      { as: 'alice', call: { tool: 'get_customer', arguments: { customer_id: 'c-200' } }, owner: 'bob' },
      { as: 'bob', call: { tool: 'get_customer', arguments: { customer_id: 'c-100' } }, owner: 'alice' },
    ],
    examples: { list_customers: {}, whoami: {}, team_stats: {}, export_customers: {} },
    safeToCall: [...REVIEW_TOOLS],
    // One call for every identity: get_customer's argument would have to differ per user, whoami needs none and reaches the downstream too.
    downstream: { observer: { url: env.observer.url }, call: { tool: 'whoami', arguments: {} } },
  };
}

/**
 * alice's token as the IdP would have issued it an hour ago: genuine key,
 * kid, issuer and audience, long expired — the realistic dead credential a
 * client still holds (the dev IdP has no revocation to offer instead).
 */
async function expiredCopy(token: string, env: ReviewEnv): Promise<string> {
  const kid = env.signingJwk.kid as string;
  const iat = nowSeconds() - 3600;
  return signWith(
    env.signingJwk,
    { alg: 'RS256', kid, typ: 'at+jwt' },
    { ...claimsOf(token), iat, nbf: iat, exp: iat + 600 },
  );
}

/** Writes a profile where `behalf review --profile` can read it (JSON is YAML); returns the path. */
export function writeReviewProfile(profile: ReviewProfileInput, dir = tempDir('behalf-review-profile-')): string {
  const path = join(dir, 'profile.yaml');
  writeFileSync(path, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  return path;
}
