/**
 * Minimal JSON-RPC 2.0 shapes and a hand-written validator: the gateway
 * forwards messages and parses only what a decision needs, so a full schema
 * validation per message would cost more than every check we make (docs/architecture.md §9).
 */
export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}
export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}
export interface JsonRpcResult {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: Record<string, unknown>;
}
export interface JsonRpcErrorResponse {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: { code: number; message: string; data?: unknown };
}
export type JsonRpcResponse = JsonRpcResult | JsonRpcErrorResponse;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m;
}
export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m);
}
export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m) && ('result' in m || 'error' in m);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Returns a reason when `v` is not a valid JSON-RPC 2.0 message, else undefined. */
export function invalidMessageReason(v: unknown): string | undefined {
  if (!isObject(v)) return 'message must be an object';
  if (v.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
  const hasId = 'id' in v;
  if (
    hasId &&
    !(
      typeof v.id === 'string' ||
      (typeof v.id === 'number' && Number.isFinite(v.id)) ||
      (v.id === null && !('method' in v))
    )
  ) {
    return 'id must be a string or a number';
  }
  if ('method' in v) {
    if (typeof v.method !== 'string' || v.method.length === 0) return 'method must be a non-empty string';
    if ('params' in v && v.params !== undefined && !isObject(v.params)) return 'params must be an object';
    if ('result' in v || 'error' in v) return 'a request cannot carry result or error';
    return undefined;
  }
  if (!hasId) return 'a response needs an id';
  if ('result' in v === 'error' in v) return 'a response has exactly one of result and error';
  if ('error' in v && (!isObject(v.error) || typeof v.error.code !== 'number' || typeof v.error.message !== 'string'))
    return 'error must have a numeric code and a message';
  return undefined;
}
