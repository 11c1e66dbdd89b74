import type { GatewayConfig } from '../../src/config/schema.js';
import { join } from 'node:path';
import { GatewayConfigSchema } from '../../src/config/schema.js';
import { filesystemServerEntry } from './files.js';
import { DEMO_AGENT_CLIENT_ID } from './users.js';

export interface QuickstartConfigInput {
  port: number;
  issuer: string;
  apiKeyHash: string;
  crmCommand: { command: string; args: string[] };
  auditPath: string;
  /** Real path of the folder holding one folder per user (prepareUserFolders), served as the `files` upstream. */
  filesRoot: string;
  /** Absolute path of the policy file (written by writeQuickstartPolicy). */
  policyFile: string;
}

/**
 * The gateway configuration the quickstart runs, built in code but validated
 * by the same schema as a YAML file. dual mode: the demo agent proves itself
 * with an API key, the user with a token from the dev IdP issued to that agent.
 * Two upstreams: the demo CRM, and server-filesystem serving every user's
 * folder, where the policy confines each user to her own.
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
    },
    upstreams: {
      crm: { transport: 'stdio', command: i.crmCommand.command, args: i.crmCommand.args, envAllow: ['PATH', 'NODE_OPTIONS'] },
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
