import type { GatewayConfig } from '../../src/config/schema.js';
import { join } from 'node:path';
import { GatewayConfigSchema } from '../../src/config/schema.js';
import { filesystemServerEntry } from './files.js';
import { AGENT_PLATFORM_ISSUER } from './keys.js';
import { DEMO_AGENT_CLIENT_ID, DEMO_GATEWAY_CLIENT_ID } from './users.js';

export interface QuickstartConfigInput {
  port: number;
  issuer: string;
  apiKeyHash: string;
  /** The demo CRM's Streamable HTTP endpoint; it validates its own tokens (audience = itself). */
  crmUrl: string;
  /** `file:` reference (relative to the state dir) to the gateway's client secret at the IdP. */
  exchangeSecretRef: string;
  auditPath: string;
  /** Real path of the folder holding one folder per user (prepareUserFolders), served as the `files` upstream. */
  filesRoot: string;
  /** Absolute path of the policy file (written by writeQuickstartPolicy). */
  policyFile: string;
  /** Key store (the gateway's signing key) and the agent platform's public keys, relative to the state dir. */
  keysFile: string;
  platformJwks: string;
}

/**
 * The gateway configuration the quickstart runs, built in code but validated
 * by the same schema as a YAML file. dual mode: the demo agent proves itself
 * with an API key, the user with a token from the dev IdP issued to that agent.
 * Two upstreams: the demo CRM over HTTP, reached with a token exchanged for
 * each user (the CRM checks it and decides by its subject), and
 * server-filesystem, one process per user rooted at her own folder.
 */
export function quickstartGatewayConfig(i: QuickstartConfigInput): GatewayConfig {
  return GatewayConfigSchema.parse({
    server: { host: '127.0.0.1', port: i.port },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: DEMO_AGENT_CLIENT_ID, apiKeys: [{ id: 'quickstart-key', hash: i.apiKeyHash }], oauthClientIds: [DEMO_AGENT_CLIENT_ID] }],
    userAuth: {
      mode: 'dual',
      // The policy reads role and customers: a token without them is refused at the door, so lists and calls agree exactly.
      issuers: [{ issuer: i.issuer, algorithms: ['ES256', 'RS256'], typ: ['at+jwt'], userClaims: ['role', 'customers'], requiredClaims: ['sub', 'exp', 'iat', 'role', 'customers'] }],
      scopes: ['mcp:tools'],
      // The third inbound pattern: an agent platform's per-call signed user context (route crm-signed).
      signedContext: { issuer: AGENT_PLATFORM_ISSUER, jwks: i.platformJwks, userClaims: ['role', 'customers'] },
    },
    keys: { file: i.keysFile },
    upstreams: {
      crm: {
        transport: 'streamable-http', url: i.crmUrl,
        // The CRM never sees the agent's key or the user's own token: the gateway exchanges the latter at the IdP (RFC 8693)
        // for a token about the same user, audience = the CRM, actor = the gateway, scope narrowed per tool.
        downstream: {
          strategy: 'token-exchange', clientId: DEMO_GATEWAY_CLIENT_ID, clientSecret: i.exchangeSecretRef,
          scopes: ['crm:read'], toolScopes: { update_customer: ['crm:read', 'crm:write'], export_all_customers: ['crm:read', 'crm:export'] },
        },
      },
      // The same CRM for users who arrive as a signed context. There is no user token to exchange, so the gateway
      // signs a 60-second assertion about the user (keys at /.well-known/jwks.json), which the CRM trusts for reading.
      'crm-signed': {
        transport: 'streamable-http', url: i.crmUrl, inbound: ['signed-context'],
        downstream: { strategy: 'user-assertion', claims: ['role'], lifetimeSeconds: 60 },
      },
      // One server-filesystem child per user session, rooted at that user's own folder: the process is the boundary;
      // the policy's path_within rules stay as a second wall.
      files: { transport: 'stdio', command: process.execPath, args: [filesystemServerEntry(), join(i.filesRoot, '{user}')], envAllow: ['PATH'], perUser: { maxPerUser: 4, maxTotal: 32 } },
    },
    // The rules live in a watched file (see policy-file.ts), so the demo shows hot reload.
    policy: { file: i.policyFile },
    audit: {
      sqlitePath: i.auditPath,
      // Which argument values the audit trail may keep; everything else is redacted (and digested).
      arguments: { keep: [{ upstreams: ['crm'], args: ['customer_id', 'owner'] }, { upstreams: ['files'], args: ['path', 'paths', 'source', 'destination'] }] },
    },
  });
}
