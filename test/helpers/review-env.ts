/**
 * What the review servers of one test file share: a real dev IdP
 * (oidc-provider) with the demo reps alice and bob, the review's agent
 * client, the servers' own client (for their downstream credentials), and
 * the downstream observer. The IdP signs with an RS256 key made here, so its
 * private JWK can be handed to the review as `issuer.signingKeyFile`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDevIdp, TOKEN_EXCHANGE_GRANT, type DevIdp } from '../../demo/idp/index.js';
import { DEMO_USERS, userClaims } from '../../demo/quickstart/users.js';
import { rsaSigningJwk } from './auth-idp.js';
import { startObserver, type Observer } from './review-observer.js';
import { mintShortLived, REVIEW_AGENT, REVIEW_PASSWORD, shortLivedCommand } from './review-token.js';
import { tempDir } from './tmp.js';

export { REVIEW_AGENT, REVIEW_PASSWORD } from './review-token.js';

/** The review servers' own client at the IdP: token exchange per user, or one service token for all (the flaw). */
export const CRM_SERVER_CLIENT = { clientId: 'crm-server', clientSecret: 'crm-server-secret-for-tests-only' };
/** Life of an exchanged token: the short-lived token of BND-08 (and, harmlessly, the servers' per-user downstream tokens). */
export const SHORT_TTL_SECONDS = 3;

export interface ReviewEnv {
  idp: DevIdp;
  observer: Observer;
  /** The IdP's private signing JWK (RS256, kid = thumbprint) and a 0600 file holding it. */
  signingJwk: Record<string, unknown>;
  signingKeyFile: string;
  /** A user token (2 h) issued to the review agent for `resource`. */
  userToken(user: string, resource: string): Promise<string>;
  /** A client_credentials token of the review agent for `resource`: valid, but no user in it (sub = client id). */
  clientToken(resource: string): Promise<string>;
  /** A user token for `resource` living SHORT_TTL_SECONDS. */
  shortLivedToken(user: string, resource: string): Promise<string>;
  /** A shell command printing a fresh such token as `{"access_token": …}`. */
  shortLivedCommand(user: string, resource: string): string;
  close(): Promise<void>;
}

export async function startReviewEnv(): Promise<ReviewEnv> {
  const signingJwk = await rsaSigningJwk();
  const signingKeyFile = join(tempDir('behalf-review-env-'), 'idp-signing-key.json');
  writeFileSync(signingKeyFile, JSON.stringify(signingJwk), { mode: 0o600 });
  const idp = await startDevIdp({
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: REVIEW_PASSWORD, claims: userClaims(u) })),
    clients: [
      {
        ...REVIEW_AGENT,
        grantTypes: ['password', 'client_credentials', TOKEN_EXCHANGE_GRANT],
        scope: 'mcp:tools crm:read',
      },
      { ...CRM_SERVER_CLIENT, grantTypes: ['client_credentials', TOKEN_EXCHANGE_GRANT], scope: 'mcp:tools crm:read' },
    ],
    jwks: { keys: [signingJwk] },
    exchangedTokenTtlSeconds: SHORT_TTL_SECONDS,
  });
  let observer: Observer;
  try {
    observer = await startObserver();
  } catch (err) {
    await idp.close();
    throw err;
  }
  return {
    idp,
    observer,
    signingJwk,
    signingKeyFile,
    userToken: async (user, resource) =>
      (await idp.passwordToken({ ...REVIEW_AGENT, username: user, password: REVIEW_PASSWORD, resource })).accessToken,
    clientToken: async (resource) => (await idp.clientCredentialsToken({ ...REVIEW_AGENT, resource })).accessToken,
    shortLivedToken: (user, resource) => mintShortLived(idp.tokenEndpoint, user, resource),
    shortLivedCommand: (user, resource) => shortLivedCommand(idp.tokenEndpoint, user, resource),
    async close() {
      await observer.close();
      await idp.close();
    },
  };
}
