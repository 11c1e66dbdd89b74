/**
 * The demo CRM on MCP SDK v2 (`@modelcontextprotocol/server`) with the
 * boundary in-process: `createMcpHandler` serves the 2026-07-28 stateless
 * era and, for 2025-era clients, its stateless legacy fallback, from one
 * factory. The lines marked `behalf:` are all a server author adds.
 *
 * Run against the quickstart's dev IdP (npm start in another terminal):
 *   node dist/examples/sdk-v2/server.js --config examples/sdk-v2/behalf.yaml
 * In your own project the import is `from 'behalf/sdk'`.
 */
import { createServer, type Server } from 'node:http';
import { createMcpHandler, type McpServer } from '@modelcontextprotocol/server';
import { createCustomerStore } from '../../demo/crm/data.js';
import * as behalf from '../../src/sdk/index.js';
import { createCrmServerV2 } from './crm.js';

export interface ExampleServer {
  url: string;
  boundary: behalf.Boundary;
  close(): Promise<void>;
}

/** `extend` adds to each per-request server before it is protected (tests add a tool that calls downstream). */
export async function startSdkV2Crm(
  o: behalf.BoundaryOptions,
  extend?: (server: McpServer) => void,
): Promise<ExampleServer> {
  const boundary = await behalf.createBoundary(o); // behalf: config, keys, policy, audit
  const store = createCustomerStore();
  // behalf: each per-request server's handlers behind the policy
  const handler = createMcpHandler(() => {
    const crm = createCrmServerV2(store);
    extend?.(crm);
    return boundary.protect(crm);
  });
  const http: Server = createServer(boundary.fetchHandler(handler)); // behalf: every request verified first
  await new Promise<void>((resolve) =>
    http.listen(Number(new URL(boundary.runtime.resource).port), '127.0.0.1', resolve),
  );
  return {
    url: boundary.runtime.resource,
    boundary,
    async close() {
      await handler.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await boundary.close();
    },
  };
}
