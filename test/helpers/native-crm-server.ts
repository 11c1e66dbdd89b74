/**
 * A small MCP server of the stateless era (2026-07-28) only, in front of the
 * demo CRM's data: `server/discover`, `tools/list`, `get_customer` that asks
 * for a confirmation first (an input-required result with a requestState of
 * its own, unprotected JSON naming the customer, which it trusts on the
 * retry), and `subscriptions/listen`. It records what it received, headers
 * included, so tests can see what the gateway forwarded.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seedCustomers } from '../../demo/crm/data.js';

export interface NativeSeen {
  headers: IncomingHttpHeaders;
  body: { id?: unknown; method?: string; params?: Record<string, unknown> };
}

export interface NativeCrmServer {
  url: string;
  seen: NativeSeen[];
  close(): Promise<void>;
}

const CUSTOMERS = new Map(seedCustomers().map((c) => [c.id, c]));

type Params = Record<string, unknown> & { arguments?: Record<string, unknown> };

function getCustomer(params: Params): Record<string, unknown> {
  const answers = params.inputResponses as Record<string, { action?: string }> | undefined;
  if (typeof params.requestState === 'string' && answers?.confirm?.action === 'accept') {
    // Trusts its own state: what the gateway's seal must protect.
    const { customerId } = JSON.parse(params.requestState) as { customerId: string };
    const c = CUSTOMERS.get(customerId);
    return { content: [{ type: 'text', text: JSON.stringify(c ?? null) }], structuredContent: c ?? {} };
  }
  return {
    resultType: 'input_required',
    inputRequests: {
      confirm: {
        method: 'elicitation/create',
        params: { message: 'Show this customer?', requestedSchema: { type: 'object', properties: {} } },
      },
      roots: { method: 'roots/list', params: {} },
    },
    requestState: JSON.stringify({ customerId: params.arguments?.customer_id }),
  };
}

function answer(method: string | undefined, params: Params): Record<string, unknown> | undefined {
  switch (method) {
    case 'server/discover':
      return {
        supportedVersions: ['2026-07-28'],
        capabilities: { tools: { listChanged: true } },
        _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'native-crm', version: '0.0.0' } },
      };
    case 'tools/list':
      return {
        tools: [
          {
            name: 'get_customer',
            inputSchema: { type: 'object', properties: { customer_id: { type: 'string' } } },
          },
        ],
      };
    case 'tools/call':
      return params.name === 'get_customer' ? getCustomer(params) : undefined;
    default:
      return undefined;
  }
}

export async function startNativeCrmServer(): Promise<NativeCrmServer> {
  const seen: NativeSeen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as NativeSeen['body'];
      seen.push({ headers: req.headers, body });
      const params = (body.params ?? {}) as Params;
      if (body.method === 'subscriptions/listen') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const ack = {
          jsonrpc: '2.0',
          method: 'notifications/subscriptions/acknowledged',
          params: { _meta: { 'io.modelcontextprotocol/subscriptionId': body.id }, notifications: params.notifications },
        };
        res.write(`event: message\ndata: ${JSON.stringify(ack)}\n\n`);
        return;
      }
      const result = answer(body.method, params);
      res.writeHead(result ? 200 : 404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          result
            ? { jsonrpc: '2.0', id: body.id, result: { resultType: 'complete', ...result } }
            : { jsonrpc: '2.0', id: body.id, error: { code: -32601, message: 'Method not found' } },
        ),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
