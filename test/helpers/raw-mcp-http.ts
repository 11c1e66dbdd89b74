/**
 * The raw test server's tools (raw-mcp-server.ts, without `crash`) over
 * HTTP, in this process: Streamable HTTP at /mcp (a server and transport per
 * session, as the SDK's own examples run it) and the 2024-11-05 HTTP+SSE
 * transport at /sse + /messages.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { buildRawServer } from './raw-mcp-server.js';

export interface RawHttpServer {
  /** Streamable HTTP endpoint. */
  url: string;
  /** 2024-11-05 SSE endpoint. */
  sseUrl: string;
  close(): Promise<void>;
}

/** What the SDK's transport needs to resume streams (it ships no store of its own outside its examples). */
function memoryEventStore(): EventStore {
  const events: Array<{ id: string; stream: string; message: JSONRPCMessage }> = [];
  return {
    async storeEvent(stream, message) {
      const id = `${stream}_${events.length}`;
      events.push({ id, stream, message });
      return id;
    },
    async replayEventsAfter(lastEventId, { send }) {
      const at = events.findIndex((e) => e.id === lastEventId);
      const stream = events[at]?.stream ?? '';
      for (const e of events.slice(at + 1)) if (e.stream === stream) await send(e.id, e.message);
      return stream;
    },
  };
}

export async function startRawHttpServer(): Promise<RawHttpServer> {
  const streamable = new Map<string, StreamableHTTPServerTransport>();
  const legacy = new Map<string, SSEServerTransport>();

  async function serveStreamable(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = req.headers['mcp-session-id'];
    const known = typeof id === 'string' ? streamable.get(id) : undefined;
    if (known) return known.handleRequest(req, res);
    if (req.method !== 'POST' || id !== undefined) {
      res.writeHead(404).end();
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      // Resumable streams, with a short retry, so `poll` can end its stream and the client come back soon.
      eventStore: memoryEventStore(),
      retryInterval: 50,
      onsessioninitialized: (sid) => void streamable.set(sid, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) streamable.delete(transport.sessionId);
    };
    await buildRawServer({ crash: false }).connect(transport);
    await transport.handleRequest(req, res);
  }

  async function serveLegacy(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res);
      legacy.set(transport.sessionId, transport);
      res.on('close', () => legacy.delete(transport.sessionId));
      await buildRawServer({ crash: false }).connect(transport);
      return;
    }
    const transport = legacy.get(url.searchParams.get('sessionId') ?? '');
    if (!transport) {
      res.writeHead(404).end();
      return;
    }
    await transport.handlePostMessage(req, res);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const serve = url.pathname === '/mcp' ? serveStreamable(req, res) : serveLegacy(req, res, url);
    serve.catch((err: unknown) => {
      // A test server's own failure: answer 500 so the test sees it, and say why on stderr.
      process.stderr.write(`raw-mcp-http: ${String(err)}\n`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${base}/mcp`,
    sseUrl: `${base}/sse`,
    async close() {
      for (const t of [...streamable.values(), ...legacy.values()]) await t.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
