import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { z } from 'zod';
import { GatewayConfigSchema } from '../../src/config/schema.js';
import { filesystemServerEntry } from './files.js';
import { AGENT_PLATFORM_ISSUER } from './keys.js';
import { DEMO_AGENT_CLIENT_ID, DEMO_GATEWAY_CLIENT_ID } from './users.js';

export interface QuickstartConfigInput {
  port: number;
  issuer: string;
  /** The demo CRM's Streamable HTTP endpoint; it validates its own tokens (audience = itself). */
  crmUrl: string;
  /** `file:` reference (relative to the state dir) to the gateway's client secret at the IdP. */
  exchangeSecretRef: string;
  auditPath: string;
  /** Real path of the folder holding one folder per user (prepareUserFolders), served as the `files` upstream. */
  filesRoot: string;
  /** Absolute path of the policy file (written by writeQuickstartPolicy). */
  policyFile: string;
  /** Key store (the gateway's signing key, the agent's API keys) and the agent platform's public keys, relative to the state dir. */
  keysFile: string;
  /** keys.maxAgeDays: every quickstart key is made to expire within it. */
  maxAgeDays: number;
  platformJwks: string;
}

/**
 * The gateway configuration the quickstart runs, built in code and written as
 * a YAML file (writeQuickstartGatewayConfig) that the gateway is then started
 * from, so the file a reviewer checks (`--config`) is the one in force.
 * dual mode: the demo agent proves itself with an API key from the key store,
 * the user with a token from the dev IdP issued to that agent.
 * Two upstreams: the demo CRM over HTTP, reached with a token exchanged for
 * each user (the CRM checks it and decides by its subject), and
 * server-filesystem, one process per user rooted at her own folder.
 */
export function quickstartGatewayConfig(i: QuickstartConfigInput): z.input<typeof GatewayConfigSchema> {
  return {
    server: { host: '127.0.0.1', port: i.port },
    clientAuth: { methods: ['api-key'] },
    // The agent's API keys are managed ones, in the key store (agent-keys.ts): dated, revocable, audited.
    clients: [{ id: DEMO_AGENT_CLIENT_ID, oauthClientIds: [DEMO_AGENT_CLIENT_ID] }],
    userAuth: {
      mode: 'dual',
      // The policy reads role and customers: a token without them is refused at the door, so lists and calls agree exactly.
      // The IdP, the gateway and the CRM share one clock here, so no skew is allowed: a token is refused from its exp on
      // (a review checks that a short-lived token stops working when it expires). Across machines keep a few seconds.
      issuers: [
        {
          issuer: i.issuer,
          algorithms: ['ES256', 'RS256'],
          typ: ['at+jwt'],
          clockSkewSeconds: 0,
          userClaims: ['role', 'customers'],
          requiredClaims: ['sub', 'exp', 'iat', 'role', 'customers'],
        },
      ],
      scopes: ['mcp:tools'],
      // The third inbound pattern: an agent platform's per-call signed user context (route crm-signed).
      signedContext: { issuer: AGENT_PLATFORM_ISSUER, jwks: i.platformJwks, userClaims: ['role', 'customers'] },
    },
    keys: { file: i.keysFile, maxAgeDays: i.maxAgeDays },
    upstreams: {
      crm: {
        transport: 'streamable-http',
        url: i.crmUrl,
        // The CRM never sees the agent's key or the user's own token: the gateway exchanges the latter at the IdP (RFC 8693)
        // for a token about the same user, audience = the CRM, actor = the gateway, scope narrowed per tool.
        downstream: {
          strategy: 'token-exchange',
          clientId: DEMO_GATEWAY_CLIENT_ID,
          clientSecret: i.exchangeSecretRef,
          scopes: ['crm:read'],
          toolScopes: { update_customer: ['crm:read', 'crm:write'], export_all_customers: ['crm:read', 'crm:export'] },
        },
      },
      // The same CRM for users who arrive as a signed context. There is no user token to exchange, so the gateway
      // signs a 60-second assertion about the user (keys at /.well-known/jwks.json), which the CRM trusts for reading.
      'crm-signed': {
        transport: 'streamable-http',
        url: i.crmUrl,
        inbound: ['signed-context'],
        downstream: { strategy: 'user-assertion', claims: ['role'], lifetimeSeconds: 60 },
      },
      // One server-filesystem child per user session, rooted at that user's own folder: the process is the boundary;
      // the policy's path_within rules stay as a second wall.
      files: {
        transport: 'stdio',
        command: process.execPath,
        args: [filesystemServerEntry(), join(i.filesRoot, '{user}')],
        envAllow: ['PATH'],
        perUser: { maxPerUser: 4, maxTotal: 32 },
      },
    },
    // The admin endpoint for `npx behalf revoke`, on loopback, on a free port (written to .behalf/admin.json).
    revocation: { admin: { host: '127.0.0.1', port: 0 } },
    // The rules live in a watched file (see policy-file.ts), so the demo shows hot reload.
    policy: { file: i.policyFile },
    audit: {
      sqlitePath: i.auditPath,
      // Which argument values the audit trail may keep; everything else is redacted (and digested).
      arguments: {
        keep: [
          { upstreams: ['crm'], args: ['customer_id', 'owner'] },
          { upstreams: ['files'], args: ['path', 'paths', 'source', 'destination'] },
        ],
      },
    },
  };
}

/** Validates the configuration (a mistake here fails the start, not the load) and writes it to `path`; relative paths in it resolve against its folder. */
export function writeQuickstartGatewayConfig(path: string, i: QuickstartConfigInput): void {
  const doc = quickstartGatewayConfig(i);
  GatewayConfigSchema.parse(doc);
  const header = [
    "# The quickstart's gateway configuration, rewritten from demo/quickstart/gateway-config.ts at every start.",
    '# The running gateway was started from this file. No secrets in it: the exchange secret is a file: reference,',
    "# the agent's API keys are hashes in keys.json. Try: npx behalf config check --config <this file>",
    '',
  ].join('\n');
  writeFileSync(path, header + stringify(doc, { lineWidth: 0 }), { mode: 0o600 });
  chmodSync(path, 0o600);
}
