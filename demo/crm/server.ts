/**
 * The demo CRM as an MCP server: four tools, one resource template, one prompt.
 *
 * By default deliberately ordinary: it trusts whoever reaches it, like most
 * published MCP servers. With `requireCaller` (the HTTP server with `auth`
 * on) it decides every call itself, BY the verified caller the HTTP layer
 * hands every handler in `extra.authInfo`: a rep sees and changes only the
 * customers she owns (`customer.owner === sub`), a manager (role=manager)
 * reads all; each operation needs its scope in the caller's token
 * (crm:read, crm:write, crm:export). Someone else's customer is answered
 * exactly like an unknown one, so ids of others' accounts cannot be probed.
 * Every customer lookup goes through `findCustomer`.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { createCustomerStore, type Customer, type CustomerStore } from './data.js';

/** The verified caller of one request, as the HTTP layer put it in `authInfo.extra`. */
export interface CrmCaller {
  sub: string;
  role?: string;
  scopes: ReadonlySet<string>;
}

export interface CrmServerOptions {
  /** Decide every call by its verified caller (and refuse calls without one). Default false: trust everyone. */
  requireCaller?: boolean;
}

type Scope = 'crm:read' | 'crm:write' | 'crm:export';

function callerOf(extra: { authInfo?: AuthInfo }): CrmCaller | undefined {
  const e = extra.authInfo?.extra;
  if (!extra.authInfo || typeof e?.sub !== 'string') return undefined;
  return { sub: e.sub, role: typeof e.role === 'string' ? e.role : undefined, scopes: new Set(extra.authInfo.scopes) };
}

export const CRM_SERVER_NAME = 'behalf-demo-crm';
export const CRM_SERVER_VERSION = '0.1.0';

/** JSON-RPC error code for an unknown resource (MCP spec, resources/read). */
const RESOURCE_NOT_FOUND = -32002;

const customerId = z.string().min(1).max(64).describe('Customer id, e.g. "c-100"');

const summarySchema = z.object({ id: z.string(), name: z.string(), owner: z.string() });
const customerSchema = summarySchema.extend({
  company: z.string(),
  email: z.string(),
  phone: z.string(),
  notes: z.string(),
  annualRevenue: z.number(),
});

/** A result carrying the same value as JSON text (for older clients) and as structuredContent. */
function ok(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: value };
}

function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

export function createCrmServer(
  store: CustomerStore = createCustomerStore(),
  options: CrmServerOptions = {},
): McpServer {
  const server = new McpServer(
    { name: CRM_SERVER_NAME, version: CRM_SERVER_VERSION, title: 'Demo CRM' },
    { instructions: 'A demo CRM. Customers c-100..c-104 belong to alice, c-200..c-204 to bob.' },
  );
  const enforce = options.requireCaller === true;

  /**
   * Who may do this (see the file comment): `{ caller }` when allowed (no
   * caller when the server trusts everyone), `{ denied }` with the reason otherwise.
   */
  const access = (extra: { authInfo?: AuthInfo }, scope: Scope): { caller?: CrmCaller; denied?: string } => {
    if (!enforce) return {};
    const caller = callerOf(extra);
    if (!caller) return { denied: 'Unauthorized: no verified caller' };
    if (!caller.scopes.has(scope)) return { denied: `Forbidden: the token lacks scope ${scope}` };
    return { caller };
  };
  const visible = (c: { owner: string }, caller: CrmCaller | undefined): boolean =>
    !enforce || (caller !== undefined && (caller.role === 'manager' || c.owner === caller.sub));
  const writable = (c: { owner: string }, caller: CrmCaller | undefined): boolean =>
    !enforce || (caller !== undefined && c.owner === caller.sub);

  // The one lookup every customer-specific handler uses (see the file comment).
  const findCustomer = (id: string, caller: CrmCaller | undefined, write = false): Customer | undefined => {
    const c = store.get(id);
    return c && (write ? writable(c, caller) : visible(c, caller)) ? c : undefined;
  };

  server.registerTool(
    'list_customers',
    {
      title: 'List customers',
      description: "Lists customers with their id, name and owning sales rep; pass owner to list one rep's customers.",
      inputSchema: {
        owner: z.string().min(1).max(64).optional().describe('Only customers owned by this sales rep (e.g. "alice")'),
      },
      outputSchema: { customers: z.array(summarySchema) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    ({ owner }, extra) => {
      const { caller, denied } = access(extra, 'crm:read');
      if (denied) return toolError(denied);
      return ok({
        customers: store.list().filter((c) => visible(c, caller) && (owner === undefined || c.owner === owner)),
      });
    },
  );

  server.registerTool(
    'get_customer',
    {
      title: 'Get customer',
      description: 'Returns the full record of one customer, including contact details, notes and annual revenue.',
      inputSchema: { customer_id: customerId },
      outputSchema: customerSchema.shape,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    ({ customer_id }, extra) => {
      const { caller, denied } = access(extra, 'crm:read');
      if (denied) return toolError(denied);
      const customer = findCustomer(customer_id, caller);
      return customer ? ok({ ...customer }) : toolError(`Unknown customer: ${customer_id}`);
    },
  );

  server.registerTool(
    'update_customer',
    {
      title: 'Update customer',
      description: 'Changes the name, email, phone or notes of one customer and returns the updated record.',
      inputSchema: {
        customer_id: customerId,
        name: z.string().min(1).max(200).optional(),
        email: z.string().max(200).optional(),
        phone: z.string().max(50).optional(),
        notes: z.string().max(2000).optional(),
      },
      outputSchema: customerSchema.shape,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ customer_id, ...patch }, extra) => {
      const { caller, denied } = access(extra, 'crm:write');
      if (denied) return toolError(denied);
      if (!findCustomer(customer_id, caller)) return toolError(`Unknown customer: ${customer_id}`);
      if (!findCustomer(customer_id, caller, true)) return toolError('Forbidden: only its owner may change a customer');
      const updated = store.update(customer_id, patch);
      return updated ? ok({ ...updated }) : toolError(`Unknown customer: ${customer_id}`);
    },
  );

  server.registerTool(
    'export_all_customers',
    {
      title: 'Export all customers',
      description: 'Exports every customer record in full. Intended for managers only.',
      inputSchema: {},
      outputSchema: { customers: z.array(customerSchema) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    (_args, extra) => {
      const { caller, denied } = access(extra, 'crm:export');
      if (denied) return toolError(denied);
      if (enforce && caller?.role !== 'manager') return toolError('Forbidden: managers only');
      return ok({ customers: store.all() });
    },
  );

  server.registerResource(
    'customer',
    new ResourceTemplate('crm://customers/{customer_id}', {
      list: (extra) => {
        const { caller, denied } = access(extra, 'crm:read');
        return {
          resources: store
            .list()
            .filter((c) => !denied && visible(c, caller))
            .map((c) => ({
              uri: `crm://customers/${c.id}`,
              name: c.id,
              title: c.name,
              mimeType: 'application/json',
            })),
        };
      },
    }),
    { title: 'Customer record', description: 'One customer record as JSON.', mimeType: 'application/json' },
    (uri, variables, extra) => {
      const id = String(variables.customer_id);
      const { caller, denied } = access(extra, 'crm:read');
      const customer = denied ? undefined : findCustomer(id, caller);
      if (!customer) throw new McpError(RESOURCE_NOT_FOUND, `Resource not found: ${uri.href}`, { uri: uri.href });
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(customer, null, 2) }] };
    },
  );

  server.registerPrompt(
    'account_summary',
    {
      title: 'Account summary',
      description: 'Asks the model to summarise one customer account for its sales rep.',
      argsSchema: { customer_id: customerId },
    },
    ({ customer_id }, extra) => {
      const { caller, denied } = access(extra, 'crm:read');
      const customer = denied ? undefined : findCustomer(customer_id, caller);
      if (!customer) throw new McpError(-32602, `Unknown customer: ${customer_id}`);
      return {
        description: `Account summary for ${customer.name} (${customer.id})`,
        messages: [
          {
            role: 'user',
            content: {
              type: 'text',
              text:
                `Summarise this account in three bullet points for its sales rep (${customer.owner}), ` +
                `then suggest one next step.\n\n${JSON.stringify(customer, null, 2)}`,
            },
          },
        ],
      };
    },
  );

  return server;
}
