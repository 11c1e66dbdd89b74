/**
 * The demo CRM on MCP SDK v1 (`@modelcontextprotocol/sdk`) with the boundary
 * in-process: `McpServer` + `StreamableHTTPServerTransport` on plain
 * `node:http`, one transport and server per session. The lines marked
 * `behalf:` are all a server author adds; the CRM itself (demo/crm/server.ts)
 * trusts whoever reaches it, and the policy decides every call.
 *
 * Run against the quickstart's dev IdP (npm start in another terminal):
 *   node dist/examples/sdk-v1/server.js --config examples/sdk-v1/behalf.yaml
 * In your own project the import is `from 'behalf/sdk'`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createCustomerStore } from '../../demo/crm/data.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createCrmServer } from '../../demo/crm/server.js';
import * as behalf from '../../src/sdk/index.js';

const MAX_BODY_BYTES = 1_048_576;
const TOO_LARGE = Symbol('too large');
const NOT_JSON = Symbol('not JSON');

/** The request's JSON body, read after the boundary has authenticated the request, within a bound. */
async function readBody(req: AsyncIterable<unknown>): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) return TOO_LARGE;
    chunks.push(c as Buffer);
  }
  if (!chunks.length) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return NOT_JSON; // answered 400 below: the transport cannot read a body that was already read
  }
}

export interface ExampleServer {
  url: string;
  boundary: behalf.Boundary;
  close(): Promise<void>;
}

/** `extend` adds to each session's server before it is protected (tests add a tool that calls downstream). */
export async function startSdkV1Crm(
  o: behalf.BoundaryOptions,
  extend?: (server: McpServer) => void,
): Promise<ExampleServer> {
  const boundary = await behalf.createBoundary(o); // behalf: config, keys, policy, audit
  const store = createCustomerStore();
  const transports = new Map<string, StreamableHTTPServerTransport>();

  const http: Server = createServer(
    // behalf: every request verified (client, user, scopes, session owner) before the transport sees it
    boundary.nodeHandler(async (req, res) => {
      const body = await readBody(req);
      if (body === TOO_LARGE || body === NOT_JSON || (req.method === 'POST' && body === undefined)) {
        const [status, error] =
          body === TOO_LARGE ? [413, 'request body too large'] : [400, 'request body is not JSON'];
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error }));
        return;
      }
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? transports.get(id) : undefined;
      if (!transport && req.method === 'POST' && isInitializeRequest(body)) {
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (sid) => void transports.set(sid, transport!),
          onsessionclosed: (sid) => void transports.delete(sid),
        });
        const crm = createCrmServer(store);
        extend?.(crm);
        const server = boundary.protect(crm); // behalf: every handler behind the policy
        await server.connect(transport);
      }
      if (!transport) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"unknown session"}');
        return;
      }
      await transport.handleRequest(req, res, body);
    }),
  );
  await new Promise<void>((resolve) =>
    http.listen(Number(new URL(boundary.runtime.resource).port), '127.0.0.1', resolve),
  );
  return {
    url: boundary.runtime.resource,
    boundary,
    async close() {
      for (const t of transports.values()) await t.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await boundary.close();
    },
  };
}
