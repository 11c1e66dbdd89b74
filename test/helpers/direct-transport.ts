/**
 * A transport that hands JSON-RPC messages straight to an MCP SDK v1 server
 * in the same process and resolves each response by id, with the request's
 * `authInfo` as the HTTP transport would pass it: no network, so what is
 * measured or checked is the server and what wraps its handlers.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { BehalfAuthInfo } from '../../src/sdk/caller.js';

export class DirectTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (e: Error) => void;
  private readonly pending = new Map<number, (m: JSONRPCMessage) => void>();
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  async send(message: JSONRPCMessage): Promise<void> {
    if ('id' in message && typeof message.id === 'number') this.pending.get(message.id)?.(message);
  }
  request(
    id: number,
    method: string,
    params: Record<string, unknown>,
    authInfo?: BehalfAuthInfo,
  ): Promise<JSONRPCMessage> {
    return new Promise((resolve) => {
      this.pending.set(id, (m) => {
        this.pending.delete(id);
        resolve(m);
      });
      this.onmessage!({ jsonrpc: '2.0', id, method, params } as JSONRPCMessage, authInfo ? { authInfo } : undefined);
    });
  }
}
