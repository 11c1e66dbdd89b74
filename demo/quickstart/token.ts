import { parse } from '../../src/cli/args.js';
import { signUserContext } from './keys.js';
import { readDevSecrets, stateDir, type DevSecrets } from './state-files.js';
import { DEMO_USERS, userClaims } from './users.js';

/**
 * Gets a user token from the dev IdP's token endpoint (password grant, dev only) and builds the agent's headers.
 * The token's audience is `resource` (default: the CRM's), so it is accepted on that upstream only.
 */
export async function mintHeaders(s: DevSecrets, user: string, resource: string = s.resource, scope: string = s.scope): Promise<Record<string, string>> {
  const password = s.passwords[user];
  if (!password) throw new Error(`unknown quickstart user ${user} (one of: ${Object.keys(s.passwords).join(', ')})`);
  const res = await fetch(s.tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(s.agent.clientId)}:${encodeURIComponent(s.agent.clientSecret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'password', username: user, password, resource, scope }),
  }).catch(() => undefined);
  if (!res?.ok) throw new Error(`the dev identity provider refused or is not running (${res?.status ?? 'no answer'})`);
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error('the dev identity provider returned no access token');
  return { 'x-api-key': s.agent.apiKey, authorization: `Bearer ${body.access_token}` };
}

const UPSTREAMS = ['crm', 'files'];

export async function tokenCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    user: { type: 'string', short: 'u' },
    upstream: { type: 'string', default: 'crm' },
    scope: { type: 'string' },
    'signed-context': { type: 'boolean', default: false },
    tool: { type: 'string' },
    args: { type: 'string', default: '{}' },
  });
  if (!values.user) throw new Error('usage: behalf token --user NAME [--upstream crm|files] [--scope "mcp:tools crm:read"]\n       behalf token --user NAME --signed-context --tool TOOL [--args JSON]');
  const secrets = readDevSecrets(stateDir());
  if (values['signed-context']) return printSignedContext(secrets, values.user, values.tool, values.args);
  if (!UPSTREAMS.includes(values.upstream)) throw new Error(`unknown quickstart upstream ${values.upstream} (one of: ${UPSTREAMS.join(', ')})`);
  // Each upstream is its own resource: a token is minted for the one asked for.
  const resource = secrets.resource.replace(/\/mcp\/[^/]+$/, `/mcp/${values.upstream}`);
  const headers = await mintHeaders(secrets, values.user, resource, values.scope ?? secrets.scope);
  process.stdout.write(`${JSON.stringify({ headers }, null, 2)}\n`);
}

/** The agent platform's part of the signed-context pattern: a request carrying a per-call assertion for exactly this tool and these arguments. */
async function printSignedContext(secrets: DevSecrets, user: string, tool: string | undefined, rawArgs: string): Promise<void> {
  const u = DEMO_USERS.find((d) => d.name === user);
  if (!u) throw new Error(`unknown quickstart user ${user} (one of: ${DEMO_USERS.map((d) => d.name).join(', ')})`);
  if (!tool) throw new Error('--signed-context needs --tool (the assertion is bound to one call)');
  let args: Record<string, unknown>;
  try {
    args = JSON.parse(rawArgs) as Record<string, unknown>;
  } catch {
    throw new Error('--args must be a JSON object');
  }
  const call = { method: 'tools/call', params: { name: tool, arguments: args } };
  const jws = await signUserContext({
    privateJwk: secrets.agentPlatform.privateJwk, resource: secrets.agentPlatform.resource, user: u.name, claims: userClaims(u), clientId: secrets.agent.clientId, call,
  });
  const request = { jsonrpc: '2.0', id: 1, ...call, params: { ...call.params, _meta: { 'behalf/user': jws } } };
  process.stdout.write(`${JSON.stringify({ url: secrets.agentPlatform.resource, headers: { 'x-api-key': secrets.agent.apiKey }, request }, null, 2)}\n`);
}
