/**
 * Short-lived user tokens for the review's stream check (BND-08), from the
 * real dev IdP. Its password grant issues tokens with the IdP-wide TTL (2 h
 * here, which every other check needs), but its RFC 8693 grant caps the
 * exchanged token's life at `exchangedTokenTtlSeconds`: exchanging a fresh
 * user token for the same resource yields the same user, issuer and
 * audience, signed by the same key, living ≈3 s.
 *
 * Also a command (`node dist/test/helpers/review-token.js ENDPOINT USER
 * RESOURCE`): a profile's `shortLived.command`, run by the review right
 * before the stream probe, so the token is not already dead when it is used.
 */
import { fileURLToPath } from 'node:url';
import { requestToken } from '../../demo/idp/token-client.js';

/** The agent the review acts through: user tokens (password), client-only tokens (client_credentials), short ones (exchange). */
export const REVIEW_AGENT = { clientId: 'review-agent', clientSecret: 'review-agent-secret-for-tests-only' };
export const REVIEW_PASSWORD = 'review-test-password';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/** `node --test dist/test/` runs every .js under the folder: only a process started with this variable acts. */
const RUN_ENV = 'BEHALF_REVIEW_TOKEN';

export async function mintShortLived(tokenEndpoint: string, user: string, resource: string): Promise<string> {
  const long = await requestToken(tokenEndpoint, REVIEW_AGENT, {
    grant_type: 'password',
    username: user,
    password: REVIEW_PASSWORD,
    resource,
  });
  const short = await requestToken(tokenEndpoint, REVIEW_AGENT, {
    grant_type: EXCHANGE,
    subject_token: long.accessToken,
    subject_token_type: ACCESS_TOKEN,
    resource,
  });
  return short.accessToken;
}

/** A shell command printing `{"access_token": …}` for a fresh short-lived token. */
export function shortLivedCommand(tokenEndpoint: string, user: string, resource: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = fileURLToPath(import.meta.url);
  return `${RUN_ENV}=1 ${q(process.execPath)} ${q(script)} ${q(tokenEndpoint)} ${q(user)} ${q(resource)}`;
}

async function main(): Promise<void> {
  const [endpoint, user, resource] = process.argv.slice(2);
  if (!endpoint || !user || !resource) throw new Error('usage: review-token.js TOKEN_ENDPOINT USER RESOURCE');
  process.stdout.write(`${JSON.stringify({ access_token: await mintShortLived(endpoint, user, resource) })}\n`);
}

if (process.env[RUN_ENV] === '1' && process.argv[1] === fileURLToPath(import.meta.url)) await main();
