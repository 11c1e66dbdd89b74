import { join } from 'node:path';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { generateSigningJwks, startDevIdp, type DevIdp } from '../../demo/idp/index.js';
import { TOKEN_EXCHANGE_GRANT } from '../../demo/idp/types.js';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import { startSdkV1CrmExpress } from '../../examples/sdk-v1/express.js';
import { startSdkV1Crm, type ExampleServer } from '../../examples/sdk-v1/server.js';
import { startSdkV2Crm } from '../../examples/sdk-v2/server.js';
import type { BoundaryOptions } from '../../src/sdk/index.js';
import { fixtureIdpOptions } from './auth-idp.js';
import { connectStreamable } from './clients.js';
import { freePort } from './free-port.js';
import { AGENT, EXCHANGER, PASSWORD } from './fixture.js';
import { tempDir } from './tmp.js';

/** A downstream API the SDK tests ask credentials for: a loopback URL, so the dev IdP may make it an audience. */
export const REPORTS_API = 'http://127.0.0.1:9/reports';

export type SdkVersion = 'v1' | 'v2';

export interface SdkFixture {
  version: SdkVersion;
  idp: DevIdp;
  /** The IdP's private signing key (it signs access tokens): forged tokens with one wrong claim are signed validly with it. */
  signing: Record<string, unknown>;
  server: ExampleServer;
  url: string;
  auditPath: string;
  /** A user token from the IdP for this server (password grant, issued to the agent). */
  token(user: string, o?: { scope?: string; ttlSeconds?: number }): Promise<string>;
  headers(token: string): Record<string, string>;
  close(): Promise<void>;
}

export interface SdkFixtureOptions {
  /** v1 only: the Express example (stateless, `boundary.middleware`) instead of the node:http one. */
  express?: boolean;
  /** Adds to the CRM server of either SDK (a tool calling downstream); `version` says which SDK's server it is. */
  extend?: { v1?: Parameters<typeof startSdkV1Crm>[1]; v2?: Parameters<typeof startSdkV2Crm>[1] };
  /** Changes to the SDK config (a protection turned off, for the review's negative variants). */
  config?: (c: Record<string, unknown>) => Record<string, unknown>;
}

/**
 * The SDK config of the examples, for a test IdP: oauth mode (the agent is
 * the token's client), the demo policy, a fresh audit file, and one
 * downstream reached by token exchange at the same IdP.
 */
export function sdkConfig(issuer: string, resource: string, auditPath: string): Record<string, unknown> {
  return {
    clients: [{ id: 'agent', oauthClientIds: [AGENT.clientId] }],
    userAuth: {
      mode: 'oauth',
      issuers: [
        {
          issuer,
          algorithms: ['ES256'],
          typ: ['at+jwt'],
          clockSkewSeconds: 0,
          userClaims: ['role', 'customers'],
          requiredClaims: ['sub', 'exp', 'iat', 'role', 'customers'],
        },
      ],
      scopes: ['mcp:tools'],
    },
    policy: { rules: DEMO_POLICY },
    audit: { sqlitePath: auditPath, arguments: { keep: [{ args: ['customer_id', 'owner', 'n'] }] } },
    sdk: {
      name: 'crm',
      resource,
      downstreams: {
        [REPORTS_API]: {
          strategy: 'token-exchange',
          clientId: EXCHANGER.clientId,
          clientSecret: `env:${EXCHANGER.secretEnv}`,
          scopes: ['crm:read'],
        },
      },
    },
  };
}

export async function startSdkFixture(version: SdkVersion, o: SdkFixtureOptions = {}): Promise<SdkFixture> {
  const signing = (await generateSigningJwks()).keys[0] as Record<string, unknown>;
  const base = fixtureIdpOptions({ agentScope: 'mcp:tools crm:read crm:write' });
  const idp = await startDevIdp({
    ...base,
    clients: [...base.clients, { ...EXCHANGER, grantTypes: [TOKEN_EXCHANGE_GRANT], scope: 'crm:read crm:write' }],
    jwks: { keys: [signing] },
  });
  const dir = tempDir('behalf-sdk-');
  const auditPath = join(dir, 'audit.db');
  const resource = `http://127.0.0.1:${await freePort()}/mcp`;
  const raw = (o.config ?? ((c) => c))(sdkConfig(idp.issuer, resource, auditPath));
  const options: BoundaryOptions = {
    config: { raw, baseDir: dir },
    env: { ...process.env, [EXCHANGER.secretEnv]: EXCHANGER.clientSecret },
    log: () => undefined,
  };
  const server =
    version === 'v2'
      ? await startSdkV2Crm(options, o.extend?.v2)
      : o.express
        ? await startSdkV1CrmExpress(options)
        : await startSdkV1Crm(options, o.extend?.v1);
  return {
    version,
    idp,
    signing,
    server,
    url: server.url,
    auditPath,
    async token(user, t = {}) {
      const r = await idp.passwordToken({
        clientId: AGENT.clientId,
        clientSecret: AGENT.clientSecret,
        username: user,
        password: PASSWORD,
        resource,
        scope: t.scope ?? 'mcp:tools crm:read',
        ttlSeconds: t.ttlSeconds,
      });
      return r.accessToken;
    },
    headers: (token) => ({ authorization: `Bearer ${token}` }),
    async close() {
      await server.close();
      await idp.close();
    },
  };
}

/** What the tests ask of a client, the same for the 1.x and 2.x official clients. */
export interface AnyClient {
  listTools(): Promise<{ tools: Array<{ name: string }> }>;
  listResources(): Promise<{ resources: Array<{ uri: string }> }>;
  callTool(p: {
    name: string;
    arguments?: Record<string, unknown>;
  }): Promise<{ structuredContent?: unknown; isError?: unknown }>;
  readResource(p: { uri: string }): Promise<{ contents: unknown[] }>;
  close(): Promise<void>;
}

/**
 * A user's official client on the fixture's server: the 1.x client (a
 * 2025-era session, or on v2 the stateless legacy fallback), or with `modern`
 * the 2.x client pinned to 2026-07-28.
 */
export async function connectSdk(
  fx: SdkFixture,
  user: string,
  era: 'legacy' | 'modern' = 'legacy',
): Promise<AnyClient> {
  const headers = fx.headers(await fx.token(user));
  if (era === 'legacy') return (await connectStreamable(fx.url, headers)) as unknown as AnyClient;
  const client = new Client2(
    { name: 'sdk-test', version: '0' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(new Transport2(new URL(fx.url), { requestInit: { headers } }));
  return client as unknown as AnyClient;
}
