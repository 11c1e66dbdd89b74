/** The demo's people. alice and bob are sales reps who own five customers each; carol manages them. */
export interface DemoUser {
  name: string;
  role: 'rep' | 'manager';
  owns?: string[];
}

export const DEMO_USERS: readonly DemoUser[] = [
  { name: 'alice', role: 'rep', owns: ['c-100', 'c-101', 'c-102', 'c-103', 'c-104'] },
  { name: 'bob', role: 'rep', owns: ['c-200', 'c-201', 'c-202', 'c-203', 'c-204'] },
  { name: 'carol', role: 'manager' },
];

/** Claims the dev IdP puts in each user's token: the gateway's policy reads them as user.claims. */
export function userClaims(u: DemoUser): Record<string, unknown> {
  return { role: u.role, customers: u.owns ?? [] };
}

export const DEMO_AGENT_CLIENT_ID = 'demo-agent';
export const DEMO_SCOPE = 'mcp:tools crm:read crm:write crm:export';
/** The gateway's own client at the dev IdP: it exchanges each user's token for one the CRM accepts (RFC 8693). */
export const DEMO_GATEWAY_CLIENT_ID = 'behalf-gateway';
