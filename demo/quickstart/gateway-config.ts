import type { GatewayConfig } from '../../src/config/schema.js';
import { GatewayConfigSchema } from '../../src/config/schema.js';
import { DEMO_POLICY } from './policy.js';
import { DEMO_AGENT_CLIENT_ID } from './users.js';

export interface QuickstartConfigInput {
  port: number;
  issuer: string;
  apiKeyHash: string;
  crmCommand: { command: string; args: string[] };
  auditPath: string;
}

/**
 * The gateway configuration the quickstart runs, built in code but validated
 * by the same schema as a YAML file. dual mode: the demo agent proves itself
 * with an API key, the user with a token from the dev IdP issued to that agent.
 */
export function quickstartGatewayConfig(i: QuickstartConfigInput): GatewayConfig {
  return GatewayConfigSchema.parse({
    server: { host: '127.0.0.1', port: i.port },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: DEMO_AGENT_CLIENT_ID, apiKeys: [{ id: 'quickstart-key', hash: i.apiKeyHash }], oauthClientIds: [DEMO_AGENT_CLIENT_ID] }],
    userAuth: {
      mode: 'dual',
      issuers: [{ issuer: i.issuer, algorithms: ['ES256', 'RS256'], typ: ['at+jwt'], userClaims: ['role', 'customers'] }],
      scopes: ['mcp:tools'],
    },
    upstreams: {
      crm: { transport: 'stdio', command: i.crmCommand.command, args: i.crmCommand.args, envAllow: ['PATH', 'NODE_OPTIONS'] },
    },
    policy: { rules: DEMO_POLICY },
    audit: { sqlitePath: i.auditPath },
  });
}
