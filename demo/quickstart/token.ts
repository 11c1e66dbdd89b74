import { chmodSync, writeFileSync } from 'node:fs';
import { parse } from '../../src/cli/args.js';
import { signUserContext } from './keys.js';
import { readDevSecrets, stateDir, type DevSecrets } from './state-files.js';
import { DEMO_USERS, userClaims } from './users.js';

export interface MintOptions {
  /** A shorter token life than the IdP's (the dev IdP's `ttl` parameter). */
  ttlSeconds?: number;
  /** The API key to send; default the agent's live one. */
  apiKey?: string;
}

/**
 * Gets a user token from the dev IdP's token endpoint (password grant, dev only) and builds the agent's headers.
 * The token's audience is `resource` (default: the CRM's), so it is accepted on that upstream only.
 */
export async function mintHeaders(
  s: DevSecrets,
  user: string,
  resource: string = s.resource,
  scope: string = s.scope,
  o: MintOptions = {},
): Promise<Record<string, string>> {
  const password = s.passwords[user];
  if (!password) throw new Error(`unknown quickstart user ${user} (one of: ${Object.keys(s.passwords).join(', ')})`);
  const res = await fetch(s.tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(s.agent.clientId)}:${encodeURIComponent(s.agent.clientSecret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'password',
      username: user,
      password,
      resource,
      scope,
      ...(o.ttlSeconds !== undefined ? { ttl: String(o.ttlSeconds) } : {}),
    }),
  }).catch(() => undefined);
  if (!res?.ok) throw new Error(`the dev identity provider refused or is not running (${res?.status ?? 'no answer'})`);
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error('the dev identity provider returned no access token');
  return { 'x-api-key': o.apiKey ?? s.agent.apiKey, authorization: `Bearer ${body.access_token}` };
}

const UPSTREAMS = ['crm', 'files'];

export const USAGE = [
  'usage: behalf token --user NAME [--upstream crm|files | --resource URL] [--scope "mcp:tools crm:read"] [--ttl SECONDS] [--revoked-key]',
  "       behalf token --client-only [--revoked-key]       the agent's API key alone, no user",
  '       behalf token --user NAME --signed-context --tool TOOL [--args JSON]',
  '  --resource URL  a token for a server of your own on loopback (examples/sdk-v1, examples/sdk-v2)',
  '  --ttl SECONDS   a token that expires sooner than the usual two hours',
  "  --revoked-key   send the agent's revoked API key instead of its live one (the gateway must refuse it)",
  "  --state-dir DIR the quickstart's folder (default BEHALF_STATE_DIR or ./.behalf)",
  '  --header-file FILE  write the headers as "Name: value" lines to FILE (mode 0600) instead of printing them,',
  '                  for curl -H @FILE and mcp-remote --header-file FILE; prints only the path',
].join('\n');

export async function tokenCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    user: { type: 'string', short: 'u' },
    upstream: { type: 'string', default: 'crm' },
    resource: { type: 'string' },
    scope: { type: 'string' },
    ttl: { type: 'string' },
    'client-only': { type: 'boolean', default: false },
    'revoked-key': { type: 'boolean', default: false },
    'state-dir': { type: 'string' },
    'signed-context': { type: 'boolean', default: false },
    tool: { type: 'string' },
    args: { type: 'string', default: '{}' },
    'header-file': { type: 'string' },
  });
  if (values['client-only'] === Boolean(values.user)) throw new Error(USAGE);
  const secrets = readDevSecrets(values['state-dir'] ?? stateDir());
  const apiKey = values['revoked-key'] ? secrets.agent.revokedApiKey : secrets.agent.apiKey;
  const out = (headers: Record<string, string>) =>
    values['header-file'] ? writeHeaderFile(values['header-file'], headers) : print({ headers });
  if (values['client-only']) return out({ 'x-api-key': apiKey });
  const user = values.user!;
  if (values['signed-context']) return printSignedContext(secrets, user, values.tool, values.args);
  if (!UPSTREAMS.includes(values.upstream))
    throw new Error(`unknown quickstart upstream ${values.upstream} (one of: ${UPSTREAMS.join(', ')})`);
  let ttlSeconds: number | undefined;
  if (values.ttl !== undefined) {
    ttlSeconds = Number(values.ttl);
    if (!/^\d+$/.test(values.ttl) || ttlSeconds < 1)
      throw new Error('--ttl must be a whole number of seconds, at least 1');
  }
  // Each upstream is its own resource: a token is minted for the one asked for, or for a server of one's own
  // on this machine (--resource: the behalf/sdk examples), which the dev IdP accepts as an audience.
  const resource = values.resource ?? secrets.resource.replace(/\/mcp\/[^/]+$/, `/mcp/${values.upstream}`);
  out(await mintHeaders(secrets, user, resource, values.scope ?? secrets.scope, { ttlSeconds, apiKey }));
}

/** "Name: value" lines, readable only by this user: curl's -H @FILE and mcp-remote's --header-file read this form. */
function writeHeaderFile(path: string, headers: Record<string, string>): void {
  const text = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('');
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
  process.stdout.write(`${path}\n`);
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The agent platform's part of the signed-context pattern: a request carrying a per-call assertion for exactly this tool and these arguments. */
async function printSignedContext(
  secrets: DevSecrets,
  user: string,
  tool: string | undefined,
  rawArgs: string,
): Promise<void> {
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
    privateJwk: secrets.agentPlatform.privateJwk,
    resource: secrets.agentPlatform.resource,
    user: u.name,
    claims: userClaims(u),
    clientId: secrets.agent.clientId,
    call,
  });
  const request = { jsonrpc: '2.0', id: 1, ...call, params: { ...call.params, _meta: { 'behalf/user': jws } } };
  print({ url: secrets.agentPlatform.resource, headers: { 'x-api-key': secrets.agent.apiKey }, request });
}
