/**
 * The CRM the review servers serve (official SDK McpServer), with its
 * authorization rules. Reps own customers (the demo directory: alice
 * c-100…c-104, bob c-200…c-204); managers see every customer and alone may
 * export. Every tool that reads customer data reaches the downstream as the
 * caller. Each call is decided for the caller of that very request (the
 * verified token, handed over as authInfo), and the list is what the same
 * rules allow — unless a flaw says otherwise.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ListToolsRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { DEMO_USERS, type DemoUser } from '../../demo/quickstart/users.js';

export const REVIEW_TOOLS = ['get_customer', 'list_customers', 'whoami', 'team_stats', 'export_customers'] as const;
export type ReviewTool = (typeof REVIEW_TOOLS)[number];

/** Who made the request: the verified token's subject, and the directory user when it names one. */
export interface Caller {
  sub: string;
  token: string;
  exp: number;
  user?: DemoUser;
}

export interface CrmRules {
  /** false: everything is allowed and listed to every caller, user or not (service-account-only). */
  perUserAuthz: boolean;
  /** This user is listed export_customers (refused) and not team_stats (served): list-mismatch. */
  mismatchFor?: string;
}

/** Reaches the downstream for `caller`; throws when the downstream refuses. */
export type Downstream = (caller: Caller, path: string) => Promise<void>;

export const DIRECTORY = new Map(DEMO_USERS.map((u) => [u.name, u]));
const OWNER = new Map(DEMO_USERS.flatMap((u) => (u.owns ?? []).map((id) => [id, u.name] as const)));

const NO_ARGS = { type: 'object' as const, properties: {} };
const TOOL_LIST: Record<ReviewTool, Tool> = {
  get_customer: {
    name: 'get_customer',
    description: 'One customer record',
    inputSchema: { type: 'object', properties: { customer_id: { type: 'string' } }, required: ['customer_id'] },
  },
  list_customers: { name: 'list_customers', description: "The caller's customers", inputSchema: NO_ARGS },
  whoami: { name: 'whoami', description: 'The caller as the CRM knows them', inputSchema: NO_ARGS },
  team_stats: { name: 'team_stats', description: 'Customer counts per rep', inputSchema: NO_ARGS },
  export_customers: { name: 'export_customers', description: 'Every customer (managers)', inputSchema: NO_ARGS },
};

function allowedTools(user: DemoUser | undefined): Set<ReviewTool> {
  if (!user) return new Set();
  const tools = new Set<ReviewTool>(['get_customer', 'list_customers', 'whoami', 'team_stats']);
  if (user.role === 'manager') tools.add('export_customers');
  return tools;
}

function mayCall(caller: Caller, tool: ReviewTool, rules: CrmRules): boolean {
  return !rules.perUserAuthz || allowedTools(caller.user).has(tool);
}

export function listedTools(caller: Caller, rules: CrmRules): ReviewTool[] {
  if (!rules.perUserAuthz) return [...REVIEW_TOOLS];
  const tools = allowedTools(caller.user);
  if (rules.mismatchFor === caller.sub) {
    tools.add('export_customers');
    tools.delete('team_stats');
  }
  return REVIEW_TOOLS.filter((t) => tools.has(t));
}

function mayRead(caller: Caller, customerId: string, rules: CrmRules): boolean {
  if (!rules.perUserAuthz) return true;
  return caller.user?.role === 'manager' || OWNER.get(customerId) === caller.sub;
}

function customersOf(caller: Caller, rules: CrmRules): string[] {
  return [...OWNER.keys()].filter((id) => mayRead(caller, id, rules));
}

const ok = (value: unknown): CallToolResult => ({ content: [{ type: 'text', text: JSON.stringify(value) }] });
const refuse = (why: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text: why }] });
const record = (id: string) => ({ id, name: `Customer ${id}`, owner: OWNER.get(id) });

function callerOf(extra: { authInfo?: { extra?: Record<string, unknown> } }): Caller {
  const caller = extra.authInfo?.extra?.caller as Caller | undefined;
  // The HTTP layer verified the token before the transport saw the request: no caller is a bug there.
  if (!caller) throw new Error('no verified caller on this request');
  return caller;
}

export function crmServer(rules: CrmRules, downstream: Downstream): McpServer {
  const server = new McpServer({ name: 'review-crm', version: '0.0.0' });
  // One wrapper decides every call before any tool runs, so no tool can forget the rule.
  const tool =
    <A>(name: ReviewTool, run: (caller: Caller, args: A) => Promise<CallToolResult>) =>
    async (args: A, extra: { authInfo?: { extra?: Record<string, unknown> } }): Promise<CallToolResult> => {
      const caller = callerOf(extra);
      if (!mayCall(caller, name, rules)) return refuse(`forbidden: ${caller.sub} may not call ${name}`);
      return run(caller, args);
    };

  server.registerTool(
    'get_customer',
    { inputSchema: { customer_id: z.string() } },
    tool('get_customer', async (caller, { customer_id }: { customer_id: string }) => {
      if (!mayRead(caller, customer_id, rules))
        return refuse(`forbidden: customer ${customer_id} is not ${caller.sub}'s`);
      if (!OWNER.has(customer_id)) return refuse(`not found: customer ${customer_id}`);
      await downstream(caller, `customers/${customer_id}`);
      return ok(record(customer_id));
    }),
  );
  server.registerTool(
    'list_customers',
    { inputSchema: {} },
    tool('list_customers', async (caller) => {
      await downstream(caller, 'customers');
      return ok({ customers: customersOf(caller, rules).map(record) });
    }),
  );
  server.registerTool(
    'whoami',
    { inputSchema: {} },
    tool('whoami', async (caller) => {
      await downstream(caller, 'me');
      return ok({ sub: caller.sub, role: caller.user?.role ?? null, customers: customersOf(caller, rules) });
    }),
  );
  server.registerTool(
    'team_stats',
    { inputSchema: {} },
    tool('team_stats', async () =>
      ok({
        reps: DEMO_USERS.filter((u) => u.role === 'rep').map((u) => ({ rep: u.name, customers: u.owns?.length ?? 0 })),
      }),
    ),
  );
  server.registerTool(
    'export_customers',
    { inputSchema: {} },
    tool('export_customers', async () => ok({ customers: [...OWNER.keys()].map(record) })),
  );

  // Replaces McpServer's own tools/list (which lists every registered tool) with the caller's view, as a gateway filters a list by policy.
  server.server.setRequestHandler(ListToolsRequestSchema, (_req, extra) => ({
    tools: listedTools(callerOf(extra), rules).map((t) => TOOL_LIST[t]),
  }));
  return server;
}
