/**
 * The SDK examples as `behalf review` targets: each example (examples/sdk-v1,
 * examples/sdk-v2) configured for the review's dev IdP, with one tool that
 * reaches the review's downstream observer with `behalf.downstream(ctx, …)`
 * (BND-09), and the review profile for it. A variant turns one protection
 * off in the config, and the review must fail the check about it.
 */
import { join } from 'node:path';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import { startSdkV1Crm, type ExampleServer } from '../../examples/sdk-v1/server.js';
import { startSdkV2Crm } from '../../examples/sdk-v2/server.js';
import * as behalf from '../../src/sdk/index.js';
import { freePort } from './free-port.js';
import {
  CRM_SERVER_CLIENT,
  REVIEW_AGENT,
  reviewProfileFor,
  type ReviewEnv,
  type ReviewProfileInput,
} from './review-servers.js';
import type { SdkVersion } from './sdk-fixture.js';
import { tempDir } from './tmp.js';

const SECRET_ENV = 'BEHALF_TEST_CRM_SERVER_SECRET';

/**
 * `policy-off`: a policy that allows every call; `auth-off`: no user required
 * and no client authentication (`userAuth.required: false`,
 * `server.allowUnauthenticated`), as a development setup would run.
 */
export type Variant = 'as-shipped' | 'policy-off' | 'auth-off';

function configFor(env: ReviewEnv, resource: string, dir: string, variant: Variant): Record<string, unknown> {
  const issuer = {
    issuer: env.idp.issuer,
    algorithms: ['RS256'],
    typ: ['at+jwt'],
    clockSkewSeconds: 0,
    userClaims: ['role', 'customers'],
  };
  const rules =
    variant === 'policy-off'
      ? [{ id: 'everything', effect: 'allow', upstreams: ['crm'], tools: ['*'], resources: ['*'], prompts: ['*'] }]
      : [...DEMO_POLICY, { id: 'whoami', effect: 'allow', upstreams: ['crm'], tools: ['whoami'] }];
  return {
    clients: [{ id: 'review-agent', oauthClientIds: [REVIEW_AGENT.clientId] }],
    ...(variant === 'auth-off' ? { server: { allowUnauthenticated: true } } : {}),
    userAuth:
      variant === 'auth-off'
        ? { mode: 'dual', issuers: [issuer], required: false }
        : { mode: 'oauth', issuers: [{ ...issuer, requiredClaims: ['sub', 'exp', 'iat', 'role', 'customers'] }] },
    policy: { rules },
    audit: { sqlitePath: join(dir, 'audit.db') },
    sdk: {
      name: 'crm',
      resource,
      downstreams: {
        [env.observer.audience]: {
          strategy: 'token-exchange',
          clientId: CRM_SERVER_CLIENT.clientId,
          clientSecret: `env:${SECRET_ENV}`,
          scopes: ['crm:read'],
        },
      },
    },
  };
}

/** The downstream call of `whoami`: this user's own credential, to the observer. */
function whoami(env: ReviewEnv) {
  return async (ctx: unknown) => {
    const credential = await behalf.downstream(ctx, env.observer.audience);
    const res = await fetch(`${env.observer.audience}/whoami`, { headers: credential.headers });
    await res.text();
    return { content: [{ type: 'text' as const, text: JSON.stringify(behalf.user(ctx) ?? null) }] };
  };
}

export async function startSdkReviewTarget(
  version: SdkVersion,
  env: ReviewEnv,
  variant: Variant,
): Promise<ExampleServer> {
  const dir = tempDir('behalf-sdk-review-');
  const resource = `http://127.0.0.1:${await freePort()}/mcp`;
  const options: behalf.BoundaryOptions = {
    config: { raw: configFor(env, resource, dir, variant), baseDir: dir },
    env: { ...process.env, [SECRET_ENV]: CRM_SERVER_CLIENT.clientSecret },
    log: () => undefined,
  };
  const tool = whoami(env);
  return version === 'v1'
    ? startSdkV1Crm(options, (s) =>
        s.registerTool('whoami', { description: 'The caller as the CRM knows them' }, (extra) => tool(extra)),
      )
    : startSdkV2Crm(options, (s) =>
        s.registerTool('whoami', { description: 'The caller as the CRM knows them' }, (ctx) => tool(ctx)),
      );
}

/** The review servers' profile, with the calls this CRM answers: a rep's own customer, and whoami for the downstream. */
export async function sdkReviewProfile(url: string, env: ReviewEnv): Promise<ReviewProfileInput> {
  // No `revoke`: behalf/sdk has no revocation of its own yet (docs/sdk.md), so BND-08 says what to add instead.
  const { revoke: _none, ...profile } = await reviewProfileFor({ url, origin: new URL(url).origin }, env);
  return { ...profile, examples: { whoami: {} }, safeToCall: ['get_customer', 'whoami', 'export_all_customers'] };
}
