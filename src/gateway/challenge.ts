import type { ServerResponse } from 'node:http';
import { toJsonRpcError, type BehalfError } from '../errors.js';
import { sendJson } from './http-io.js';

const INVALID_TOKEN_CODES = new Set(['user_token_invalid', 'client_auth_invalid', 'delegation_mismatch']);

function quote(v: string): string {
  return `"${v.replace(/["\\]/g, '')}"`;
}

/**
 * The one place that turns an error into an HTTP answer. 401s carry a Bearer
 * challenge pointing at the RFC 9728 document (with `error="invalid_token"`
 * only when a token was presented, RFC 6750 §3.1); 403 insufficient_scope
 * lists every scope needed. The body is the code's JSON-RPC error from the
 * one table (src/errors.ts): details stay in the audit log.
 */
export function wwwAuthenticate(
  err: BehalfError,
  metadataUrl: string | undefined,
  scopes: readonly string[],
): string | undefined {
  if (err.status !== 401 && err.code !== 'insufficient_scope') return undefined;
  const parts: string[] = [];
  if (err.code === 'insufficient_scope') parts.push('error="insufficient_scope"');
  else if (INVALID_TOKEN_CODES.has(err.code))
    parts.push('error="invalid_token"', `error_description=${quote(err.publicMessage)}`);
  const scope = err.details.scope ?? scopes.join(' ');
  if (scope) parts.push(`scope=${quote(scope)}`);
  if (metadataUrl) parts.push(`resource_metadata=${quote(metadataUrl)}`);
  return `Bearer ${parts.join(', ')}`;
}

export function sendError(
  res: ServerResponse,
  err: BehalfError,
  opts: { metadataUrl?: string; scopes?: readonly string[]; id?: string | number } = {},
): void {
  const headers: Record<string, string> = {};
  const challenge = wwwAuthenticate(err, opts.metadataUrl, opts.scopes ?? []);
  if (challenge) headers['www-authenticate'] = challenge;
  if (err.code === 'method_not_allowed') headers.allow = err.details.allow ?? 'GET, POST, DELETE';
  // Quotas and caps say when to come back (RFC 9110 §10.2.3: seconds).
  if (err.details.retryAfter) headers['retry-after'] = err.details.retryAfter;
  // Once the body is parsed, the error answers its request: it carries that request's id.
  sendJson(res, err.status, toJsonRpcError(err, opts.id ?? null), headers);
}
