/**
 * Raw stateless (2026-07-28) requests, in the wire form the 2.x SDK client
 * sends: no session; the version and client capabilities in each request's
 * `_meta`; `MCP-Protocol-Version`, `Mcp-Method` and, for tools/call,
 * prompts/get and resources/read, `Mcp-Name` headers mirroring the body.
 */
import { postRpc, type RawReply } from './transport-clients.js';

export const STATELESS_VERSION = '2026-07-28';

/** Which body field `Mcp-Name` mirrors, per method (SEP-2243). */
const NAME_FIELD: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

let nextId = 1;

export function statelessMessage(
  method: string,
  params: Record<string, unknown> = {},
): { jsonrpc: '2.0'; id: number; method: string; params: Record<string, unknown> } {
  return {
    jsonrpc: '2.0',
    id: nextId++,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': STATELESS_VERSION,
        'io.modelcontextprotocol/clientInfo': { name: 'behalf-raw-stateless', version: '0.0.0' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  };
}

/** The standard request headers for one stateless request; `override` replaces any of them. */
export function statelessHeaders(
  method: string,
  params: Record<string, unknown>,
  override: Record<string, string> = {},
): Record<string, string> {
  const field = NAME_FIELD[method];
  const name = field ? params[field] : undefined;
  return {
    'mcp-protocol-version': STATELESS_VERSION,
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...override,
  };
}

/** Sends one stateless request with the caller's credentials. */
export function statelessPost(
  url: string,
  credentials: Record<string, string>,
  method: string,
  params: Record<string, unknown> = {},
  override: Record<string, string> = {},
): Promise<RawReply> {
  return postRpc(url, credentials, statelessMessage(method, params), statelessHeaders(method, params, override));
}

export interface RpcBody {
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}
