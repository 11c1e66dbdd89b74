import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** An official SDK 1.x client connected through the gateway with the given headers. */
export async function connectStreamable(url: string, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'behalf-test', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

export async function connectSse(url: string, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'behalf-test', version: '0.0.0' });
  const transport = new SSEClientTransport(new URL(url), {
    requestInit: { headers },
    eventSourceInit: {
      fetch: (u, init) => fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
    },
  });
  await client.connect(transport);
  return client;
}

/** Parses the JSON text content of a tool result. */
export function toolJson(result: unknown): Record<string, unknown> {
  const r = result as { content?: Array<{ type: string; text?: string }> };
  const text = r.content?.find((c) => c.type === 'text')?.text;
  if (text === undefined) throw new Error('tool result has no text content');
  return JSON.parse(text) as Record<string, unknown>;
}
