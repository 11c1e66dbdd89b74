/**
 * The demo CRM's tools, resource template and prompt (demo/crm/server.ts) on
 * MCP SDK v2. Like the original it trusts whoever reaches it: the boundary
 * in front decides every call (examples/sdk-v2/server.ts).
 */
import { McpServer, ResourceTemplate, type CallToolResult } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { CRM_SERVER_NAME, CRM_SERVER_VERSION } from '../../demo/crm/server.js';
import type { CustomerStore } from '../../demo/crm/data.js';

const customerId = z.string().min(1).max(64).describe('Customer id, e.g. "c-100"');

function ok(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: value };
}

function unknownCustomer(id: string): CallToolResult {
  return { content: [{ type: 'text', text: `Unknown customer: ${id}` }], isError: true };
}

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };

export function createCrmServerV2(store: CustomerStore): McpServer {
  const server = new McpServer({ name: CRM_SERVER_NAME, version: CRM_SERVER_VERSION, title: 'Demo CRM' });
  server.registerTool(
    'list_customers',
    {
      description: "Lists customers with their id, name and owning sales rep; pass owner to list one rep's customers.",
      inputSchema: z.object({ owner: z.string().min(1).max(64).optional() }),
      annotations: READ_ONLY,
    },
    ({ owner }) => ok({ customers: store.list().filter((c) => owner === undefined || c.owner === owner) }),
  );
  server.registerTool(
    'get_customer',
    {
      description: 'Returns the full record of one customer.',
      inputSchema: z.object({ customer_id: customerId }),
      annotations: READ_ONLY,
    },
    ({ customer_id }) => {
      const c = store.get(customer_id);
      return c ? ok({ ...c }) : unknownCustomer(customer_id);
    },
  );
  server.registerTool(
    'update_customer',
    {
      description: 'Changes the notes of one customer and returns the updated record.',
      inputSchema: z.object({ customer_id: customerId, notes: z.string().max(2000).optional() }),
      annotations: { ...READ_ONLY, readOnlyHint: false, destructiveHint: true },
    },
    ({ customer_id, notes }) => {
      const c = store.update(customer_id, notes === undefined ? {} : { notes });
      return c ? ok({ ...c }) : unknownCustomer(customer_id);
    },
  );
  server.registerTool(
    'export_all_customers',
    { description: 'Exports every customer record in full. Intended for managers only.', annotations: READ_ONLY },
    () => ok({ customers: store.all() }),
  );
  server.registerResource(
    'customer',
    new ResourceTemplate('crm://customers/{customer_id}', {
      list: () => ({
        resources: store
          .list()
          .map((c) => ({ uri: `crm://customers/${c.id}`, name: c.id, mimeType: 'application/json' })),
      }),
    }),
    { description: 'One customer record as JSON.', mimeType: 'application/json' },
    (uri, variables) => {
      const c = store.get(String(variables.customer_id));
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(c ?? null) }] };
    },
  );
  server.registerPrompt(
    'account_summary',
    {
      description: 'Summarise one customer account for its sales rep.',
      argsSchema: z.object({ customer_id: customerId }),
    },
    ({ customer_id }) => ({
      messages: [
        {
          role: 'user',
          content: { type: 'text', text: `Summarise this account:\n${JSON.stringify(store.get(customer_id) ?? null)}` },
        },
      ],
    }),
  );
  return server;
}
