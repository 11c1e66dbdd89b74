/**
 * The demo CRM on MCP SDK v1 served by Express (the SDK's own
 * `createMcpExpressApp`, which brings DNS-rebinding protection for loopback),
 * statelessly: a server and transport per request. The boundary is one
 * middleware in front of the route and one `protect` per server.
 */
import type { Server } from 'node:http';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Request, Response } from 'express';
import { createCustomerStore } from '../../demo/crm/data.js';
import { createCrmServer } from '../../demo/crm/server.js';
import * as behalf from '../../src/sdk/index.js';
import type { ExampleServer } from './server.js';

export async function startSdkV1CrmExpress(o: behalf.BoundaryOptions): Promise<ExampleServer> {
  const boundary = await behalf.createBoundary(o); // behalf: config, keys, policy, audit
  const store = createCustomerStore();
  const app = createMcpExpressApp();
  app.use(boundary.middleware); // behalf: every request verified; req.auth reaches handlers as extra.authInfo
  app.post('/mcp', async (req: Request, res: Response) => {
    const server = boundary.protect(createCrmServer(store)); // behalf: every handler behind the policy
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void transport.close().then(() => server.close()));
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  const port = Number(new URL(boundary.runtime.resource).port);
  const http: Server = await new Promise((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  return {
    url: boundary.runtime.resource,
    boundary,
    async close() {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await boundary.close();
    },
  };
}
