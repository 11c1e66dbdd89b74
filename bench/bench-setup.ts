/** What the round-trip benches share: the demo CRM as its own process, the dev IdP with the demo users, a dual-mode gateway config. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevIdp, type DevIdp } from '../demo/idp/index.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { DEMO_USERS, userClaims } from '../demo/quickstart/users.js';
import { hashApiKey } from '../src/identity/api-keys.js';
import { lineOf } from '../test/helpers/spawned-gateway.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The demo CRM over Streamable HTTP, in a process of its own so its CPU can be read apart. */
export async function spawnDemoCrm(): Promise<{ crm: ChildProcess; crmUrl: string }> {
  const crm = spawn(process.execPath, [join(root, 'demo/crm/http-main.js'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const crmUrl = (JSON.parse(await lineOf(crm, /^\{"url"/)) as { url: string }).url;
  return { crm, crmUrl };
}

/** The dev IdP with the demo users (password `bench`) and one agent client allowed the password grant. */
export function startBenchIdp(): Promise<DevIdp> {
  return startDevIdp({
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: 'bench', claims: userClaims(u) })),
    clients: [{ clientId: 'agent', clientSecret: 'bench-secret', grantTypes: ['password'], scope: 'mcp:tools' }],
  });
}

/** A user's access token for `resource`, as the agent obtains it. */
export async function benchToken(idp: DevIdp, resource: string, username = 'alice'): Promise<string> {
  const t = await idp.passwordToken({
    clientId: 'agent',
    clientSecret: 'bench-secret',
    username,
    password: 'bench',
    resource,
  });
  return t.accessToken;
}

/** Everything on, as the benches measure it: dual mode (API key + ES256 user JWT), the demo CEL policy, an upstream over HTTP. */
export function benchGatewayConfig(o: {
  issuer: string;
  apiKey: string;
  crmUrl: string;
  userClaims?: string[];
  rules?: typeof DEMO_POLICY;
}): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0 },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'bench', hash: hashApiKey(o.apiKey) }], oauthClientIds: ['agent'] }],
    userAuth: {
      mode: 'dual',
      issuers: [{ issuer: o.issuer, algorithms: ['ES256'], userClaims: o.userClaims ?? ['role', 'customers'] }],
    },
    upstreams: { crm: { transport: 'streamable-http', url: o.crmUrl } },
    policy: { rules: o.rules ?? DEMO_POLICY },
  };
}
