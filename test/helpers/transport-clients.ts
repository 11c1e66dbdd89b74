/**
 * Helpers for the transport tests: SDK 1.x clients over either downstream
 * transport of the gateway, denial assertions, and raw HTTP for the
 * Streamable HTTP session lifecycle (DELETE, GET stream).
 */
import assert from 'node:assert/strict';
import { Client, type ClientOptions } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { seedCustomers } from '../../demo/crm/data.js';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../../demo/crm/http.js';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import { CRM_STDIO, startFixture, type Fixture } from './fixture.js';

/** One gateway route per upstream transport, each to the demo CRM. */
export const CRM_ROUTES = { stdio: 'crm-stdio', 'streamable-http': 'crm-http', sse: 'crm-sse' } as const;

export const BOBS = seedCustomers().find((c) => c.id === 'c-200')!;
/** What a denial shown to alice must never contain: the rules that decided it, or bob's data. */
export const NOT_IN_DENIALS = [
  ...DEMO_POLICY.map((r) => r.id),
  BOBS.id,
  BOBS.owner,
  BOBS.name,
  BOBS.company,
  BOBS.email,
];

/** A gateway in front of the CRM over stdio, Streamable HTTP and SSE; every HTTP request the CRM receives lands in `seen`. */
export async function startCrmMatrix(seen: CrmRequestInfo[]): Promise<{ fx: Fixture; crm: CrmHttpServer }> {
  const crm = await startCrmHttp({ onRequest: (info) => seen.push(info) });
  try {
    const fx = await startFixture({
      upstreams: {
        [CRM_ROUTES.stdio]: CRM_STDIO,
        [CRM_ROUTES['streamable-http']]: { transport: 'streamable-http', url: crm.url },
        [CRM_ROUTES.sse]: { transport: 'sse', url: crm.sseUrl },
      },
      // The demo policy names the upstream `crm`; here the CRM has one route per transport.
      policy: DEMO_POLICY.map((r) => ({ ...r, upstreams: Object.values(CRM_ROUTES) })),
    });
    return { fx, crm };
  } catch (err) {
    await crm.close();
    throw err;
  }
}

/** The two ways a client reaches the gateway. */
export type Downstream = 'streamable-http' | 'sse';
export const DOWNSTREAMS: readonly Downstream[] = ['streamable-http', 'sse'];

/** The gateway's -32003: a call decided as denied. */
export const FORBIDDEN = -32003;

export function downstreamUrl(fx: Fixture, kind: Downstream, route: string): string {
  return kind === 'sse' ? `${fx.gateway.baseUrl}/mcp/${route}/sse` : fx.gateway.urlFor(route);
}

function downstreamTransport(kind: Downstream, url: string, headers: Record<string, string>): Transport {
  if (kind === 'streamable-http') return new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  return new SSEClientTransport(new URL(url), {
    requestInit: { headers },
    // The GET that opens the stream must carry the credentials too.
    eventSourceInit: {
      fetch: (u, init) => fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
    },
  });
}

/**
 * An official SDK 1.x client connected through the gateway to `route` over
 * `kind`; `setup` may register capabilities' handlers before connecting.
 */
export async function connectVia(
  fx: Fixture,
  kind: Downstream,
  route: string,
  headers: Record<string, string>,
  options?: ClientOptions,
  setup?: (client: Client) => void,
): Promise<Client> {
  const client = new Client({ name: 'behalf-transport-test', version: '0.0.0' }, options);
  setup?.(client);
  await client.connect(downstreamTransport(kind, downstreamUrl(fx, kind, route), headers));
  return client;
}

/**
 * Asserts a call is refused by the gateway's policy: JSON-RPC -32003 with a
 * message that names none of `mustNotMention` (rule ids, other users' data).
 */
export async function assertDenied(call: Promise<unknown>, mustNotMention: readonly string[]): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof McpError, `expected an McpError, got ${String(err)}`);
    assert.equal(err.code, FORBIDDEN);
    for (const word of mustNotMention)
      assert.ok(!err.message.includes(word), `denial message mentions ${word}: ${err.message}`);
    return true;
  });
}

/** Closes whatever clients were opened, ignoring ones already gone. */
export async function closeAll(clients: Iterable<Client | undefined>): Promise<void> {
  await Promise.all([...clients].map((c) => c?.close().catch(() => {})));
}

/** Polls `check` until it holds or `ms` pass. */
export async function eventually(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------- raw HTTP

export interface RawReply {
  status: number;
  headers: Headers;
  body: unknown;
}

export const SESSION_PROTOCOL_VERSION = '2025-11-25';

/** POSTs one JSON-RPC message to a Streamable HTTP endpoint and reads a JSON answer (or none). */
export async function postRpc(
  url: string,
  headers: Record<string, string>,
  message: unknown,
  extra: Record<string, string> = {},
): Promise<RawReply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
      ...extra,
    },
    body: JSON.stringify(message),
  });
  const text = await res.text();
  let body: unknown = text;
  if (/application\/json/.test(res.headers.get('content-type') ?? '') && text) body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body };
}

/** Opens a 2025-era session the way a client does (initialize, then notifications/initialized); returns its id. */
export async function openSession(url: string, headers: Record<string, string>): Promise<string> {
  const init = await postRpc(
    url,
    headers,
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: SESSION_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'raw', version: '0' },
      },
    },
    { accept: 'application/json' },
  );
  assert.equal(init.status, 200);
  const id = init.headers.get('mcp-session-id');
  assert.ok(id, 'initialize answered without mcp-session-id');
  const sessionHeaders = { 'mcp-session-id': id, 'mcp-protocol-version': SESSION_PROTOCOL_VERSION };
  const note = await postRpc(url, headers, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionHeaders);
  assert.equal(note.status, 202);
  return id;
}

/** The headers a session's later requests carry. */
export function sessionHeaders(headers: Record<string, string>, sessionId: string): Record<string, string> {
  return { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': SESSION_PROTOCOL_VERSION };
}
