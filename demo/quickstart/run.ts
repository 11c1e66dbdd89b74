import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashApiKey, generateApiKey } from '../../src/identity/api-keys.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { startCrmHttp, type CrmHttpServer } from '../crm/http.js';
import { startDevIdp, TOKEN_EXCHANGE_GRANT, type DevIdp } from '../idp/index.js';
import type { JWK } from 'jose';
import { prepareUserFolders } from './files.js';
import { AGENT_PLATFORM_ISSUER, writeAgentPlatformKeys, writeQuickstartKeyStore } from './keys.js';
import { quickstartGatewayConfig } from './gateway-config.js';
import { writeQuickstartPolicy } from './policy-file.js';
import { firstFreePort } from './ports.js';
import { removeStateFiles, stateDir, writeStateFiles, type DevSecrets, type QuickstartFile } from './state-files.js';
import { mintHeaders } from './token.js';
import { DEMO_AGENT_CLIENT_ID, DEMO_GATEWAY_CLIENT_ID, DEMO_SCOPE, DEMO_USERS, userClaims } from './users.js';

export interface Quickstart {
  gateway: Gateway;
  /** The demo CRM's own endpoint (it accepts only tokens issued for it). */
  crmUrl: string;
  idp: DevIdp;
  file: QuickstartFile;
  stateDir: string;
  close(): Promise<void>;
}

const DEFAULT_PORT = 8787;
const EXCHANGE_SECRET_FILE = 'gateway-exchange-secret';

function requestedPort(env: NodeJS.ProcessEnv): number | undefined {
  if (env.BEHALF_PORT === undefined || env.BEHALF_PORT === '') return undefined;
  const p = Number(env.BEHALF_PORT);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error('BEHALF_PORT must be a port number');
  return p;
}


export async function startQuickstart(env: NodeJS.ProcessEnv = process.env, log: (l: string) => void = () => {}): Promise<Quickstart> {
  const dir = stateDir(env);
  const port = requestedPort(env) ?? (await firstFreePort(DEFAULT_PORT));
  const idpPort = await firstFreePort(port + 1, '127.0.0.1', [port]);
  const passwords = Object.fromEntries(DEMO_USERS.map((u) => [u.name, randomBytes(12).toString('base64url')]));
  const agentSecret = randomBytes(24).toString('base64url');
  const exchangeSecret = randomBytes(24).toString('base64url');
  const idp = await startDevIdp({
    port: idpPort,
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: passwords[u.name]!, claims: userClaims(u) })),
    clients: [
      { clientId: DEMO_AGENT_CLIENT_ID, clientSecret: agentSecret, grantTypes: ['password', 'client_credentials', TOKEN_EXCHANGE_GRANT], scope: DEMO_SCOPE },
      { clientId: DEMO_GATEWAY_CLIENT_ID, clientSecret: exchangeSecret, grantTypes: [TOKEN_EXCHANGE_GRANT], scope: DEMO_SCOPE },
    ],
  });
  // The CRM trusts the IdP, not the gateway: it checks every token itself and decides by its subject.
  let crm: CrmHttpServer;
  try {
    // It also trusts the gateway's own signed user assertions (route crm-signed), for reading only.
    const gatewayBase = `http://127.0.0.1:${port}`;
    crm = await startCrmHttp({
      auth: [
        { issuer: idp.issuer },
        { issuer: gatewayBase, jwksUri: `${gatewayBase}/.well-known/jwks.json`, typ: 'JWT', scopesIfAbsent: ['crm:read'] },
      ],
    });
  } catch (err) {
    await idp.close();
    throw err;
  }
  const apiKey = generateApiKey();
  let gateway: Gateway;
  let filesRoot: string;
  let platformKey: JWK;
  try {
    filesRoot = prepareUserFolders(join(dir, 'files'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(join(dir, EXCHANGE_SECRET_FILE), exchangeSecret, { mode: 0o600 });
    await writeQuickstartKeyStore(dir);
    platformKey = await writeAgentPlatformKeys(dir);
    writeQuickstartPolicy(policyFile, filesRoot);
    gateway = await startGateway({
      config: quickstartGatewayConfig({
        port, issuer: idp.issuer, apiKeyHash: hashApiKey(apiKey), crmUrl: crm.url, exchangeSecretRef: `file:${EXCHANGE_SECRET_FILE}`,
        auditPath: join(dir, 'audit.db'), filesRoot, policyFile, keysFile: 'keys.json', platformJwks: 'file:agent-platform.jwks.json',
      }),
      baseDir: dir,
    }, { log });
  } catch (err) {
    await crm.close();
    await idp.close();
    throw err;
  }
  const route = gateway.runtime.routes.get('crm')!;
  const secrets: DevSecrets = {
    gateway: route.resource, issuer: idp.issuer, tokenEndpoint: idp.tokenEndpoint, resource: route.resource,
    agent: { clientId: DEMO_AGENT_CLIENT_ID, clientSecret: agentSecret, apiKey }, passwords, scope: DEMO_SCOPE,
    agentPlatform: { issuer: AGENT_PLATFORM_ISSUER, privateJwk: platformKey, resource: gateway.urlFor('crm-signed') },
  };
  const users: QuickstartFile['users'] = {};
  const files: QuickstartFile['files'] = { gateway: gateway.urlFor('files'), root: filesRoot, users: {} };
  for (const u of DEMO_USERS) {
    users[u.name] = { headers: await mintHeaders(secrets, u.name), ...(u.owns ? { owns: u.owns } : { role: u.role }) };
    files.users[u.name] = { headers: await mintHeaders(secrets, u.name, files.gateway), folder: join(filesRoot, u.name) };
  }
  const file: QuickstartFile = {
    gateway: route.resource,
    sse: `${gateway.baseUrl}${route.ssePath}`,
    issuer: idp.issuer,
    resourceMetadata: route.metadataUrl,
    users,
    files,
    tokenCommand: 'npx behalf token --user <name>',
    tokenExchange: {
      tokenEndpoint: idp.tokenEndpoint, grantType: TOKEN_EXCHANGE_GRANT, subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      resource: route.resource, clientId: DEMO_AGENT_CLIENT_ID, clientSecretIn: join(dir, 'dev-secrets.json'),
    },
    signedContext: {
      gateway: gateway.urlFor('crm-signed'), metaKey: 'behalf/user', issuer: AGENT_PLATFORM_ISSUER,
      headers: { 'x-api-key': apiKey }, privateKeyIn: join(dir, 'dev-secrets.json'),
      tokenCommand: 'npx behalf token --user <name> --signed-context --tool get_customer --args \'{"customer_id":"c-100"}\'',
    },
  };
  writeStateFiles(dir, file, secrets);
  return {
    gateway, idp, file, stateDir: dir, crmUrl: crm.url,
    async close() {
      removeStateFiles(dir, file.gateway);
      rmSync(join(dir, EXCHANGE_SECRET_FILE), { force: true });
      await gateway.close();
      await crm.close();
      await idp.close();
    },
  };
}

function banner(q: Quickstart): string {
  return [
    '',
    'behalf quickstart is running (development only: dev identity provider, demo data).',
    '',
    `  gateway (Streamable HTTP)  ${q.file.gateway}`,
    `  gateway (legacy SSE)       ${q.file.sse}`,
    `  crm, signed user context   ${q.file.signedContext.gateway}  (API key + per-call _meta["behalf/user"])`,
    `  files (Streamable HTTP)    ${q.file.files.gateway}`,
    `  identity provider          ${q.file.issuer}`,
    `  resource metadata          ${q.file.resourceMetadata}`,
    `  policy (edit: hot reload)  ${join(q.stateDir, 'policy.yaml')}`,
    `  audit trail                ${join(q.stateDir, 'audit.db')}  (npx behalf audit tail --db …)`,
    `  credentials for each user  ${join(q.stateDir, 'quickstart.json')}`,
    '',
    'Next:',
    '  • Act as a user: send the headers of users.alice from quickstart.json with any MCP client.',
    '  • alice may read c-100…c-104 and is denied bob\'s c-200…c-204; carol (manager) reads all.',
    `  • The CRM (${q.crmUrl}) never sees the agent's key or the user's token: the gateway exchanges it for one about the same user;`,
    '    even with policy.yaml opened wide, the CRM itself refuses bob\'s customers to alice.',
    `  • On the files upstream (headers: files.users.alice) each user reaches only her own folder, ${join(q.file.files.root, '<name>')}.`,
    '  • Fresh headers: npx behalf token --user alice',
    '  • Try it: npx @modelcontextprotocol/inspector, transport Streamable HTTP, URL above, add the headers.',
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}

export async function quickstartCommand(_argv: string[]): Promise<void> {
  const q = await startQuickstart(process.env, (l) => process.stderr.write(`${l}\n`));
  process.stdout.write(banner(q));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping…\n');
    void q.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
