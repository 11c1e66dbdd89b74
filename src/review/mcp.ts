import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { RPC } from '../errors.js';
import type { ReviewContext } from './context.js';

export const REVIEW_CLIENT = { name: 'behalf-review', version: '1' };
export const LATEST_PROTOCOL = '2025-11-25';

/** One MCP session opened by the review as someone. */
export interface McpConn {
  client: Client;
  sessionId?: string;
  close(): Promise<void>;
}

/**
 * Opens an MCP session through the official SDK client, every request going
 * through the review's recorded, budgeted fetch. Throws when the server
 * refuses; the caller judges what that means.
 */
export async function connectAs(ctx: ReviewContext, headers: Record<string, string>): Promise<McpConn> {
  const url = requireTarget(ctx);
  const client = new Client(REVIEW_CLIENT, { capabilities: {} });
  const requestInit = { headers };
  if (ctx.inputs.transport === 'sse') {
    const transport = new SSEClientTransport(url, { requestInit, fetch: ctx.fetch, eventSourceInit: { fetch: (u, init) => ctx.fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }) } });
    await client.connect(transport);
    noteServer(ctx, client);
    return { client, sessionId: endpointOf(transport)?.searchParams.get('sessionId') ?? undefined, close: () => client.close().catch(() => {}) }; // best effort: the review is done with this session either way
  }
  const transport = new StreamableHTTPClientTransport(url, { requestInit, fetch: ctx.fetch, reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 } });
  await client.connect(transport);
  noteServer(ctx, client);
  return {
    client,
    sessionId: transport.sessionId,
    close: async () => {
      // Best effort: the review is done with this session either way; a server that keeps it is not what is judged here.
      await transport.terminateSession().catch(() => {});
      await client.close().catch(() => {}); // best effort, as above
    },
  };
}

/** The first session's server and negotiated protocol version go into the pack's fingerprint, on either transport. */
function noteServer(ctx: ReviewContext, client: Client): void {
  const info = client.getServerVersion();
  if (info && !ctx.facts.serverInfo) ctx.facts.serverInfo = { name: info.name, version: info.version };
  // Streamable HTTP exposes the negotiated version; the legacy transport keeps it in a private field.
  const t = client.transport as { protocolVersion?: string; _protocolVersion?: string } | undefined;
  ctx.facts.protocolVersion ??= t?.protocolVersion ?? t?._protocolVersion;
}

/** The legacy transport keeps its POST endpoint (which carries the session id) private; the SDK exposes it only through this field. */
function endpointOf(transport: unknown): URL | undefined {
  return (transport as { _endpoint?: URL } | undefined)?._endpoint;
}

export function legacyEndpoint(conn: McpConn): URL | undefined {
  return endpointOf(conn.client.transport);
}

export function requireTarget(ctx: ReviewContext): URL {
  if (!ctx.target) throw new Error('no --target given');
  return ctx.target;
}

/** How a tool call ended, as far as the boundary is concerned. */
export interface CallOutcome {
  kind: 'allowed' | 'denied' | 'error';
  detail: string;
}

const DENIAL_TEXT = /forbid|denied|deny|not allowed|not authori[sz]ed|unauthori[sz]ed|permission|insufficient[_ ]scope|not permitted|not found|unknown tool/i;
/** JSON-RPC codes servers use for refusals: behalf's Forbidden, the SDK's invalid-params for unknown tools, method not found. */
const DENIAL_CODES = new Set<number>([RPC.Forbidden, RPC.RequestTimeout, RPC.InvalidParams, RPC.MethodNotFound]);

/** Calls a tool the profile marked safe; never any other. */
export async function callTool(ctx: ReviewContext, conn: McpConn, tool: string, args: Record<string, unknown>): Promise<CallOutcome> {
  ctx.assertSafe(tool);
  try {
    const result = await conn.client.callTool({ name: tool, arguments: args });
    const text = resultText(result);
    if (result.isError) return { kind: DENIAL_TEXT.test(text) ? 'denied' : 'error', detail: `isError result: ${clip(text)}` };
    return { kind: 'allowed', detail: `result: ${clip(text)}` };
  } catch (err) {
    return outcomeOfError(err);
  }
}

export function outcomeOfError(err: unknown): CallOutcome {
  const e = err as { code?: unknown; message?: string };
  const message = clip(String(e.message ?? err));
  const status = /HTTP (\d{3})|\b(40[13])\b/.exec(message);
  if (typeof e.code === 'number' && (DENIAL_CODES.has(e.code) || e.code === 401 || e.code === 403)) return { kind: 'denied', detail: `error ${e.code}: ${message}` };
  if (status && ['401', '403'].includes(status[1] ?? status[2] ?? '')) return { kind: 'denied', detail: message };
  if (DENIAL_TEXT.test(message)) return { kind: 'denied', detail: message };
  return { kind: 'error', detail: message };
}

export function resultText(result: unknown): string {
  const content = (result as { content?: unknown }).content;
  if (!Array.isArray(content)) return JSON.stringify(result ?? null);
  return content.map((c: { type?: string; text?: string }) => (c.type === 'text' ? c.text ?? '' : `[${c.type ?? 'content'}]`)).join('\n');
}

export function clip(s: string, n = 160): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Lists every tool (following cursors, bounded). */
export async function listTools(conn: McpConn): Promise<Array<{ name: string }>> {
  const tools: Array<{ name: string }> = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await conn.client.listTools(cursor ? { cursor } : {});
    tools.push(...r.tools);
    cursor = r.nextCursor;
    if (!cursor) break;
  }
  return tools;
}

export interface RawReply {
  status: number;
  headers: Headers;
  text: string;
  /** JSON-RPC messages in the body (JSON or SSE). */
  messages: Array<Record<string, unknown>>;
}

/**
 * A hand-made HTTP request, for what an SDK client would never send: a
 * forged token, another user's session id, a hostile Origin. The body of an
 * event stream is read until the server ends it or `readMs` passes.
 */
export async function rawRequest(ctx: ReviewContext, o: { method: string; url?: URL | string; headers?: Record<string, string>; body?: unknown; readMs?: number }): Promise<RawReply> {
  const url = o.url ?? requireTarget(ctx);
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream', ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), o.readMs ?? ctx.profile.limits.requestTimeoutMs);
  try {
    const res = await ctx.fetch(url, { method: o.method, headers, signal: ac.signal, ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}) });
    let text = '';
    try {
      text = await res.text();
    } catch {
      // Cut off at readMs: what arrived so far is not returned by text(), and the status is what matters.
    }
    return { status: res.status, headers: res.headers, text, messages: parseMessages(text, res.headers.get('content-type') ?? '') };
  } finally {
    clearTimeout(timer);
  }
}

export function parseMessages(text: string, contentType: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const push = (s: string) => {
    try {
      const v = JSON.parse(s) as unknown;
      for (const m of Array.isArray(v) ? v : [v]) if (m && typeof m === 'object') out.push(m as Record<string, unknown>);
    } catch {
      // not JSON: not a message
    }
  };
  if (contentType.includes('text/event-stream')) {
    for (const block of text.split(/\r?\n\r?\n/)) {
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) push(data);
    }
  } else if (text.trim()) push(text);
  return out;
}

export function initializeBody(id: number | string = 1): Record<string, unknown> {
  return { jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL, capabilities: {}, clientInfo: REVIEW_CLIENT } };
}
