import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/server.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import {
  startDevIdp,
  TOKEN_EXCHANGE_GRANT,
  type DevClient,
  type DevIdp,
  type DevIdpOptions,
} from '../../demo/idp/index.js';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import { DEMO_USERS, userClaims } from '../../demo/quickstart/users.js';
import { tempDir } from './tmp.js';

export const AGENT = { clientId: 'agent', clientSecret: 'agent-secret-for-tests-only' };
/** The gateway's own client at the IdP, for RFC 8693 token exchange (its secret reaches the gateway by env reference). */
export const EXCHANGER = {
  clientId: 'gateway-exchanger',
  clientSecret: 'gateway-exchanger-secret-for-tests',
  secretEnv: 'BEHALF_TEST_EXCHANGER_SECRET',
};
export const OTHER_AGENT = { clientId: 'other-agent', clientSecret: 'other-agent-secret-for-tests' };
export const PASSWORD = 'test-password';

/** The demo CRM as a stdio child, from the compiled tree. */
export const CRM_STDIO = {
  transport: 'stdio' as const,
  command: process.execPath,
  args: [fileURLToPath(new URL('../../demo/crm/stdio.js', import.meta.url))],
};

export interface FixtureOptions {
  /** Raw (pre-validation) config fragments merged over the defaults; a function gets the started IdP (an upstream that trusts it). */
  upstreams?: Record<string, unknown> | ((idp: DevIdp) => Promise<Record<string, unknown>>);
  /**
   * Adds the gateway's exchanging client (EXCHANGER) to the IdP — by default
   * with the token-exchange grant and scope `crm:read crm:write` — and its
   * secret to the gateway's environment as EXCHANGER.secretEnv.
   */
  exchanger?: { grantTypes?: DevClient['grantTypes']; scope?: string };
  /** Rules (array), or a whole policy section ({ rules, rateLimits, methods, file, watch }). */
  policy?: unknown[] | Record<string, unknown>;
  clientAuth?: Record<string, unknown>;
  userAuth?: Record<string, unknown>;
  server?: Record<string, unknown>;
  /** The `sessions` section (limits and quotas). */
  sessions?: Record<string, unknown>;
  clients?: unknown[];
  /** The `operations` section (metrics, tracing, logs, shutdown). */
  operations?: Record<string, unknown>;
  /** The `audit` section (default: SQLite in memory) and the `state` section. */
  audit?: Record<string, unknown>;
  state?: Record<string, unknown>;
  idp?: Partial<DevIdpOptions>;
  gateway?: GatewayOptions;
  /** Start the IdP only; the test builds the gateway itself. */
  noGateway?: boolean;
}

export interface Fixture {
  idp: DevIdp;
  gateway: Gateway;
  apiKey: string;
  otherApiKey: string;
  /** A fresh user token for `user` (alice, bob, carol), issued to `agent` for the resource of `upstream`. */
  userToken(
    user: string,
    o?: { upstream?: string; resource?: string; client?: typeof AGENT; scope?: string },
  ): Promise<string>;
  /** Headers the demo agent sends for `user`: its API key plus the user's token. */
  headersFor(user: string, o?: { upstream?: string }): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * A real dev IdP (oidc-provider) and a real gateway in front of the given
 * upstreams, with the demo users and the demo policy unless overridden.
 * Clients: `agent` (API key `apiKey`) and `other-agent` (`otherApiKey`).
 */
export async function startFixture(o: FixtureOptions = {}): Promise<Fixture> {
  const { clients: idpClients, ...idpRest } = o.idp ?? {};
  const idp = await startDevIdp({
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: PASSWORD, claims: userClaims(u) })),
    clients: [
      ...(idpClients ?? [
        {
          clientId: AGENT.clientId,
          clientSecret: AGENT.clientSecret,
          grantTypes: ['password', 'client_credentials'],
          scope: 'mcp:tools crm:read crm:write',
        },
        {
          clientId: OTHER_AGENT.clientId,
          clientSecret: OTHER_AGENT.clientSecret,
          grantTypes: ['password', 'client_credentials'],
          scope: 'mcp:tools crm:read crm:write',
        },
      ]),
      ...(o.exchanger
        ? [
            {
              clientId: EXCHANGER.clientId,
              clientSecret: EXCHANGER.clientSecret,
              grantTypes: o.exchanger.grantTypes ?? [TOKEN_EXCHANGE_GRANT],
              scope: o.exchanger.scope ?? 'crm:read crm:write',
            },
          ]
        : []),
    ],
    ...idpRest,
  });
  const apiKey = generateApiKey();
  const otherApiKey = generateApiKey();
  const dir = tempDir();
  const raw = {
    server: { host: '127.0.0.1', port: 0, ...o.server },
    clientAuth: { methods: ['api-key'], ...o.clientAuth },
    clients: o.clients ?? [
      { id: 'agent', apiKeys: [{ id: 'k1', hash: hashApiKey(apiKey) }], oauthClientIds: [AGENT.clientId] },
      {
        id: 'other-agent',
        apiKeys: [{ id: 'k2', hash: hashApiKey(otherApiKey) }],
        oauthClientIds: [OTHER_AGENT.clientId],
      },
    ],
    userAuth: {
      mode: 'dual',
      issuers: [{ issuer: idp.issuer, algorithms: ['ES256', 'RS256'], userClaims: ['role', 'customers'] }],
      ...o.userAuth,
    },
    upstreams:
      typeof o.upstreams === 'function'
        ? await o.upstreams(idp).catch(async (err: unknown) => {
            await idp.close();
            throw err;
          })
        : (o.upstreams ?? { crm: CRM_STDIO }),
    policy: Array.isArray(o.policy) ? { rules: o.policy } : (o.policy ?? { rules: DEMO_POLICY }),
    audit: o.audit ?? { sqlitePath: ':memory:' },
    ...(o.state ? { state: o.state } : {}),
    ...(o.sessions ? { sessions: o.sessions } : {}),
    ...(o.operations ? { operations: o.operations } : {}),
  };
  let gateway: Gateway | undefined;
  if (!o.noGateway) {
    try {
      const env = o.exchanger
        ? { env: { ...process.env, ...o.gateway?.env, [EXCHANGER.secretEnv]: EXCHANGER.clientSecret } }
        : {};
      gateway = await startGateway(parseConfig(raw, dir), {
        log: () => {},
        verifier: { jwksCooldownMs: 0 },
        ...o.gateway,
        ...env,
      });
    } catch (err) {
      await idp.close();
      throw err;
    }
  }
  const resourceOf = (upstream = 'crm') => gateway!.urlFor(upstream);
  const fixture: Fixture = {
    idp,
    gateway: gateway as Gateway,
    apiKey,
    otherApiKey,
    async userToken(user, t = {}) {
      const client = t.client ?? AGENT;
      const r = await idp.passwordToken({
        clientId: client.clientId,
        clientSecret: client.clientSecret,
        username: user,
        password: PASSWORD,
        resource: t.resource ?? resourceOf(t.upstream),
        ...(t.scope ? { scope: t.scope } : {}),
      });
      return r.accessToken;
    },
    async headersFor(user, t = {}) {
      return { 'x-api-key': apiKey, authorization: `Bearer ${await fixture.userToken(user, t)}` };
    },
    async close() {
      await gateway?.close();
      await idp.close();
    },
  };
  return fixture;
}
