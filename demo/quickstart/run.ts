import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { startCrmHttp, type CrmHttpServer } from '../crm/http.js';
import { generateSigningJwks, startDevIdp, TOKEN_EXCHANGE_GRANT, type DevIdp } from '../idp/index.js';
import type { JWK } from 'jose';
import { writeAgentApiKeys } from './agent-keys.js';
import { removeAdminFiles, writeAdminFile, writeAdminKey } from './admin-key.js';
import { prepareUserFolders } from './files.js';
import {
  AGENT_PLATFORM_ISSUER,
  DEV_IDP_SIGNING_KEY_FILE,
  writeAgentPlatformKeys,
  writeDevIdpSigningKey,
  writeQuickstartKeyStore,
} from './keys.js';
import { writeQuickstartGatewayConfig } from './gateway-config.js';
import { writeQuickstartPolicy } from './policy-file.js';
import { acquireQuickstartLock, type QuickstartLock } from './lock.js';
import { firstFreePort } from './ports.js';
import { REVIEW_PROFILE_FILE, reviewCommand, writeReviewProfile } from './review-profile.js';
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
const GATEWAY_CONFIG_FILE = 'gateway.yaml';
/** keys.maxAgeDays, and how long every quickstart key is valid (so none is ever over age). */
const KEY_MAX_AGE_DAYS = 30;

function requestedPort(env: NodeJS.ProcessEnv): number | undefined {
  if (env.BEHALF_PORT === undefined || env.BEHALF_PORT === '') return undefined;
  const p = Number(env.BEHALF_PORT);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error('BEHALF_PORT must be a port number');
  return p;
}

export async function startQuickstart(
  env: NodeJS.ProcessEnv = process.env,
  log: (l: string) => void = () => {},
): Promise<Quickstart> {
  const dir = stateDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Before anything in the folder is written: a live quickstart owning it keeps it (issue: a second one broke the first).
  const lock = acquireQuickstartLock(dir);
  try {
    return await startLocked(env, log, dir, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
  dir: string,
  lock: QuickstartLock,
): Promise<Quickstart> {
  const port = requestedPort(env) ?? (await firstFreePort(DEFAULT_PORT));
  const idpPort = await firstFreePort(port + 1, '127.0.0.1', [port]);
  lock.update({ gatewayPort: port, idpPort });
  const passwords = Object.fromEntries(DEMO_USERS.map((u) => [u.name, randomBytes(12).toString('base64url')]));
  const agentSecret = randomBytes(24).toString('base64url');
  const exchangeSecret = randomBytes(24).toString('base64url');
  // Generated here rather than inside the IdP, so its private half can be handed to a review (dev only, see keys.ts).
  const idpJwks = await generateSigningJwks();
  const idpSigningKeyFile = writeDevIdpSigningKey(dir, idpJwks);
  const idp = await startDevIdp({
    port: idpPort,
    jwks: idpJwks,
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: passwords[u.name]!, claims: userClaims(u) })),
    clients: [
      {
        clientId: DEMO_AGENT_CLIENT_ID,
        clientSecret: agentSecret,
        grantTypes: ['password', 'client_credentials', TOKEN_EXCHANGE_GRANT],
        scope: DEMO_SCOPE,
      },
      {
        clientId: DEMO_GATEWAY_CLIENT_ID,
        clientSecret: exchangeSecret,
        grantTypes: [TOKEN_EXCHANGE_GRANT],
        scope: DEMO_SCOPE,
      },
    ],
  });
  // The CRM trusts the IdP, not the gateway: it checks every token itself and decides by its subject.
  let crm: CrmHttpServer;
  try {
    // It also trusts the gateway's own signed user assertions (route crm-signed), for reading only.
    const gatewayBase = `http://127.0.0.1:${port}`;
    crm = await startCrmHttp({
      // The review's downstream observer (GET /observed): which credentials reached the CRM, as fingerprints.
      observe: true,
      auth: [
        { issuer: idp.issuer },
        {
          issuer: gatewayBase,
          jwksUri: `${gatewayBase}/.well-known/jwks.json`,
          typ: 'JWT',
          scopesIfAbsent: ['crm:read'],
        },
      ],
    });
  } catch (err) {
    await idp.close();
    throw err;
  }
  const gatewayConfig = join(dir, GATEWAY_CONFIG_FILE);
  let gateway: Gateway;
  let filesRoot: string;
  let platformKey: JWK;
  let agentKeys: { apiKey: string; revokedApiKey: string };
  try {
    filesRoot = prepareUserFolders(join(dir, 'files'));
    const policyFile = join(dir, 'policy.yaml');
    const auditPath = join(dir, 'audit.db');
    writeFileSync(join(dir, EXCHANGE_SECRET_FILE), exchangeSecret, { mode: 0o600 });
    const keyStore = await writeQuickstartKeyStore(dir);
    agentKeys = await writeAgentApiKeys(keyStore, auditPath, DEMO_AGENT_CLIENT_ID, KEY_MAX_AGE_DAYS);
    await writeAdminKey(dir, keyStore, auditPath, KEY_MAX_AGE_DAYS);
    platformKey = await writeAgentPlatformKeys(dir);
    writeQuickstartPolicy(policyFile, filesRoot);
    writeQuickstartGatewayConfig(gatewayConfig, {
      port,
      issuer: idp.issuer,
      crmUrl: crm.url,
      exchangeSecretRef: `file:${EXCHANGE_SECRET_FILE}`,
      auditPath,
      filesRoot,
      policyFile,
      keysFile: 'keys.json',
      maxAgeDays: KEY_MAX_AGE_DAYS,
      platformJwks: 'file:agent-platform.jwks.json',
    });
    // Started from the file just written, so the file is the truth about what runs.
    gateway = await startGateway(loadConfigFile(gatewayConfig), { log });
  } catch (err) {
    await crm.close();
    await idp.close();
    throw err;
  }
  const route = gateway.runtime.routes.get('crm')!;
  const reviewProfilePath = join(dir, REVIEW_PROFILE_FILE);
  const secrets: DevSecrets = {
    gateway: route.resource,
    issuer: idp.issuer,
    tokenEndpoint: idp.tokenEndpoint,
    resource: route.resource,
    agent: { clientId: DEMO_AGENT_CLIENT_ID, clientSecret: agentSecret, ...agentKeys },
    passwords,
    scope: DEMO_SCOPE,
    agentPlatform: { issuer: AGENT_PLATFORM_ISSUER, privateJwk: platformKey, resource: gateway.urlFor('crm-signed') },
  };
  const users: QuickstartFile['users'] = {};
  const files: QuickstartFile['files'] = { gateway: gateway.urlFor('files'), root: filesRoot, users: {} };
  for (const u of DEMO_USERS) {
    users[u.name] = { headers: await mintHeaders(secrets, u.name), ...(u.owns ? { owns: u.owns } : { role: u.role }) };
    files.users[u.name] = {
      headers: await mintHeaders(secrets, u.name, files.gateway),
      folder: join(filesRoot, u.name),
    };
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
      tokenEndpoint: idp.tokenEndpoint,
      grantType: TOKEN_EXCHANGE_GRANT,
      subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      resource: route.resource,
      clientId: DEMO_AGENT_CLIENT_ID,
      clientSecretIn: join(dir, 'dev-secrets.json'),
    },
    signedContext: {
      gateway: gateway.urlFor('crm-signed'),
      metaKey: 'behalf/user',
      issuer: AGENT_PLATFORM_ISSUER,
      headers: { 'x-api-key': agentKeys.apiKey },
      privateKeyIn: join(dir, 'dev-secrets.json'),
      tokenCommand:
        'npx behalf token --user <name> --signed-context --tool get_customer --args \'{"customer_id":"c-100"}\'',
    },
    gatewayConfig,
    review: {
      profile: reviewProfilePath,
      config: gatewayConfig,
      observer: crm.observedUrl!,
      idpSigningKeyFile,
      note: "development only: the dev IdP's private signing key is written out so a review can sign claim attacks with it; never do this with a real IdP",
      command: reviewCommand(route.resource, reviewProfilePath, gatewayConfig),
    },
  };
  writeReviewProfile(reviewProfilePath, {
    stateDir: dir,
    gateway: route.resource,
    issuer: idp.issuer,
    jwksUri: idp.jwksUri,
    observerUrl: crm.observedUrl!,
    gatewayConfig,
  });
  writeStateFiles(dir, file, secrets);
  writeAdminFile(dir, gateway.runtime.revocations!.adminUrl!);
  lock.update({ gateway: file.gateway });
  return {
    gateway,
    idp,
    file,
    stateDir: dir,
    crmUrl: crm.url,
    async close() {
      removeStateFiles(dir, file.gateway);
      removeAdminFiles(dir);
      rmSync(join(dir, EXCHANGE_SECRET_FILE), { force: true });
      rmSync(join(dir, DEV_IDP_SIGNING_KEY_FILE), { force: true });
      await gateway.close();
      await crm.close();
      await idp.close();
      lock.release();
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
    `  gateway config             ${q.file.gatewayConfig}  (npx behalf config check --config …)`,
    `  review profile             ${q.file.review.profile}`,
    '',
    'Next:',
    '  • Act as a user: send the headers of users.alice from quickstart.json with any MCP client.',
    "  • alice may read c-100…c-104 and is denied bob's c-200…c-204; carol (manager) reads all.",
    `  • The CRM (${q.crmUrl}) never sees the agent's key or the user's token: the gateway exchanges it for one about the same user;`,
    "    even with policy.yaml opened wide, the CRM itself refuses bob's customers to alice.",
    `  • On the files upstream (headers: files.users.alice) each user reaches only her own folder, ${join(q.file.files.root, '<name>')}.`,
    '  • Fresh headers: npx behalf token --user alice',
    '  • Cut alice off at once (her open streams end, her calls are refused): npx behalf revoke --user alice',
    `  • curl: npx behalf token --user alice --header-file ${join(q.stateDir, 'alice.headers')}, then curl -H @that-file (README)`,
    '  • Inspector 2.x (Node ≥ 22.19): npx @modelcontextprotocol/inspector@2 --transport http --server-url URL --header "Name: value" …',
    `  • Review it: ${q.file.review.command}`,
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
    void q.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
