/**
 * A canary MCP upstream (official SDK, Streamable HTTP, stateful): it serves
 * a few tools and records everything that reaches it — every HTTP request
 * (headers and raw body) and, for every tool call, the headers of the very
 * HTTP request that carried it, its arguments and its `_meta`. Tests read the
 * records to prove what an upstream receives: whose credential, and nothing
 * that was meant for the gateway only.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export type Headers = Record<string, string | string[] | undefined>;

export interface CanaryRequest {
  method: string;
  path: string;
  headers: Headers;
  body: string;
}
export interface CanaryCall {
  tool: string;
  args: Record<string, unknown>;
  headers: Headers;
  meta: Record<string, unknown> | undefined;
}

export interface CanaryUpstream {
  /** Streamable HTTP endpoint, http://127.0.0.1:PORT/mcp. */
  url: string;
  requests: CanaryRequest[];
  calls: CanaryCall[];
  close(): Promise<void>;
}

export const CANARY_TOOLS = ['get_customer', 'echo', 'slow_echo'] as const;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startCanaryUpstream(): Promise<CanaryUpstream> {
  const requests: CanaryRequest[] = [];
  const calls: CanaryCall[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();

  function server(): McpServer {
    const s = new McpServer({ name: 'behalf-canary', version: '0.0.0' });
    const record = (
      tool: string,
      args: Record<string, unknown>,
      extra: { requestInfo?: { headers: Headers }; _meta?: Record<string, unknown> },
    ) => {
      calls.push({ tool, args, headers: { ...extra.requestInfo?.headers }, meta: extra._meta });
    };
    s.registerTool(
      'get_customer',
      { description: 'A customer record', inputSchema: { customer_id: z.string() } },
      (args, extra) => {
        record('get_customer', args, extra);
        return { content: [{ type: 'text', text: `customer ${args.customer_id}` }] };
      },
    );
    s.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } }, (args, extra) => {
      record('echo', args, extra);
      return { content: [{ type: 'text', text: args.text }] };
    });
    s.registerTool(
      'slow_echo',
      {
        description: 'Returns its text after ms milliseconds',
        inputSchema: { text: z.string(), ms: z.number().int().min(0).max(2000) },
      },
      async (args, extra) => {
        record('slow_echo', args, extra);
        await new Promise((r) => setTimeout(r, args.ms));
        return { content: [{ type: 'text', text: args.text }] };
      },
    );
    return s;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://canary.invalid').pathname;
    const body = req.method === 'POST' ? await readBody(req) : '';
    requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, body });
    if (path !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const sid = req.headers['mcp-session-id'];
    const parsed = body ? (JSON.parse(body) as unknown) : undefined;
    if (typeof sid === 'string') {
      const t = transports.get(sid);
      if (!t) {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
        return;
      }
      await t.handleRequest(req, res, parsed);
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await server().connect(transport);
    await transport.handleRequest(req, res, parsed);
  }

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    calls,
    async close() {
      await Promise.allSettled([...transports.values()].map((t) => t.close()));
      await new Promise<void>((r) => {
        http.close(() => r());
        http.closeAllConnections();
      });
    },
  };
}
