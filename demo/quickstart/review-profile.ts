import { chmodSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DEV_IDP_SIGNING_KEY_FILE } from './keys.js';

export const REVIEW_PROFILE_FILE = 'review-profile.yaml';

export interface ReviewProfileInput {
  /** The quickstart's state dir: the profile is written there and its commands read dev-secrets.json from it. */
  stateDir: string;
  /** The gateway's CRM resource (the review's --target). */
  gateway: string;
  issuer: string;
  jwksUri: string;
  /** The demo CRM's GET /observed. */
  observerUrl: string;
  /** The gateway configuration file the gateway runs (the review's --config). */
  gatewayConfig: string;
}

/** Read-only CRM tools: the review calls nothing else (update_customer writes, export_all_customers copies everything). */
const SAFE_TOOLS = ['get_customer', 'list_customers'];

/**
 * The quickstart described for `behalf review --profile`: who to act as and
 * how, what may be called, where the downstream observer is. It holds no
 * secret: each credential is a command that prints fresh headers (the
 * running CLI by absolute path, so it works from any folder and starts
 * quickly), reading the quickstart's dev-secrets.json.
 */
export function reviewProfile(i: ReviewProfileInput): Record<string, unknown> {
  const token = (...args: string[]) => ({
    command: [process.execPath, cliEntry(), 'token', '--state-dir', i.stateDir, ...args].map(shellQuote).join(' '),
  });
  return {
    identities: {
      alice: token('--user', 'alice'),
      bob: token('--user', 'bob'),
      carol: token('--user', 'carol'),
      // The agent's API key and no user: a valid client that must not get in on its own (BND-03).
      agent: token('--client-only'),
    },
    clientOnly: 'agent',
    // alice's valid token with the agent's revoked API key: only the key is wrong (BND-02).
    revoked: token('--user', 'alice', '--revoked-key'),
    issuer: {
      issuer: i.issuer,
      jwksUri: i.jwksUri,
      audience: i.gateway,
      // Development only: the dev IdP's private key, so claim attacks carry a valid signature (BND-04).
      signingKeyFile: DEV_IDP_SIGNING_KEY_FILE,
    },
    // Same issuer, same user, audience = the gateway's files upstream (BND-04).
    otherResource: token('--user', 'alice', '--upstream', 'files'),
    // Expires 3 s after it is minted, well within limits.streamWaitSeconds (BND-08).
    shortLived: token('--user', 'alice', '--ttl', '3'),
    // Revokes carol through the admin endpoint; her session and stream must end at once (BND-08). Her tokens issued
    // afterwards work again (a revocation counts from its time), so the checks after BND-08 act as her as before.
    revoke: {
      command: [process.execPath, cliEntry(), 'revoke', '--state-dir', i.stateDir, '--reason', 'behalf review BND-08']
        .map(shellQuote)
        .concat('--user {sub}')
        .join(' '),
      user: token('--user', 'carol'),
    },
    // Each rep is denied the other's customer; the owner's own call is the positive control (BND-05).
    crossUser: [
      { as: 'alice', call: { tool: 'get_customer', arguments: { customer_id: 'c-200' } }, owner: 'bob' },
      { as: 'bob', call: { tool: 'get_customer', arguments: { customer_id: 'c-100' } }, owner: 'alice' },
    ],
    // Examples apply to every user alike, and each rep may list or read only her own customers: any example
    // would be refused to one of them. The crossUser calls give each rep a call of her own instead (BND-06).
    examples: {},
    safeToCall: SAFE_TOOLS,
    downstream: {
      observer: { url: i.observerUrl },
      // alice's customer: alice and carol (manager) reach the CRM with it; bob is refused at the gateway.
      call: { tool: 'get_customer', arguments: { customer_id: 'c-100' } },
    },
  };
}

export function writeReviewProfile(path: string, i: ReviewProfileInput): void {
  const header = [
    '# A behalf review profile for the running quickstart, rewritten at every start (demo/quickstart/review-profile.ts).',
    '# It holds no secret: each credential is a command printing fresh headers from dev-secrets.json.',
    `# Use: ${reviewCommand(i.gateway, path, i.gatewayConfig)}`,
    '',
  ].join('\n');
  writeFileSync(path, header + stringify(reviewProfile(i), { lineWidth: 0 }), { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function reviewCommand(target: string, profile: string, config: string): string {
  return ['npx', 'behalf', 'review', '--target', target, '--profile', profile, '--config', config, '--out', 'review/']
    .map(shellQuote)
    .join(' ');
}

/** The CLI this code is part of (dist/src/cli/main.js), by absolute path. */
function cliEntry(): string {
  return fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
