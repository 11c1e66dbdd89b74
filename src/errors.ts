/**
 * Typed errors with stable codes. Callers switch on `code`, never on messages.
 * `expose` says whether `message` may be shown to the caller; anything else is
 * answered with a generic message so internals never leak (docs/architecture.md §6).
 */
export type ErrorCode =
  | 'body_too_large'
  | 'body_timeout'
  | 'parse_error'
  | 'invalid_request'
  | 'unsupported_media_type'
  | 'not_acceptable'
  | 'method_not_allowed'
  | 'origin_not_allowed'
  | 'host_not_allowed'
  | 'unsupported_protocol_version'
  | 'unknown_route'
  | 'client_auth_required'
  | 'client_auth_invalid'
  | 'user_token_required'
  | 'user_token_invalid'
  | 'delegation_mismatch'
  | 'user_context_required'
  | 'user_context_invalid'
  | 'insufficient_scope'
  | 'session_unknown'
  | 'session_required'
  | 'forbidden'
  | 'audit_unavailable'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'downstream_credential_unavailable'
  | 'too_many_processes'
  | 'config_invalid'
  | 'internal';

interface ErrorSpec { status: number; expose: boolean; publicMessage: string }

const SPECS: Record<ErrorCode, ErrorSpec> = {
  body_too_large: { status: 413, expose: true, publicMessage: 'Request body too large' },
  body_timeout: { status: 408, expose: true, publicMessage: 'Request body not received in time' },
  parse_error: { status: 400, expose: true, publicMessage: 'Parse error: body is not valid JSON' },
  invalid_request: { status: 400, expose: true, publicMessage: 'Invalid JSON-RPC request' },
  unsupported_media_type: { status: 415, expose: true, publicMessage: 'Content-Type must be application/json' },
  not_acceptable: { status: 406, expose: true, publicMessage: 'Accept must include application/json and text/event-stream' },
  method_not_allowed: { status: 405, expose: true, publicMessage: 'HTTP method not allowed here' },
  origin_not_allowed: { status: 403, expose: true, publicMessage: 'Origin not allowed' },
  host_not_allowed: { status: 403, expose: true, publicMessage: 'Host not allowed' },
  unsupported_protocol_version: { status: 400, expose: true, publicMessage: 'Unsupported MCP-Protocol-Version' },
  unknown_route: { status: 404, expose: true, publicMessage: 'No MCP server at this path' },
  client_auth_required: { status: 401, expose: true, publicMessage: 'Client authentication required' },
  // Why a credential failed (unknown key, untrusted issuer, bad signature …) is an oracle: audit log only.
  client_auth_invalid: { status: 401, expose: false, publicMessage: 'Client authentication failed' },
  user_token_required: { status: 401, expose: true, publicMessage: 'User authentication required' },
  user_token_invalid: { status: 401, expose: false, publicMessage: 'User token is invalid' },
  delegation_mismatch: { status: 401, expose: true, publicMessage: 'User token was not issued to this client' },
  // Signed user context (per message): answered as a JSON-RPC error of that call; why it failed goes to the audit trail only.
  user_context_required: { status: 401, expose: true, publicMessage: 'Signed user context required' },
  user_context_invalid: { status: 401, expose: false, publicMessage: 'Signed user context is invalid' },
  insufficient_scope: { status: 403, expose: true, publicMessage: 'Insufficient scope' },
  session_unknown: { status: 404, expose: true, publicMessage: 'Session not found' },
  session_required: { status: 400, expose: true, publicMessage: 'Mcp-Session-Id header required' },
  forbidden: { status: 403, expose: true, publicMessage: 'Forbidden' },
  audit_unavailable: { status: 503, expose: true, publicMessage: 'Request refused: audit log unavailable' },
  upstream_unavailable: { status: 502, expose: true, publicMessage: 'Upstream MCP server unavailable' },
  upstream_timeout: { status: 504, expose: true, publicMessage: 'Upstream MCP server timed out' },
  // Why (IdP down, exchange refused) goes to the audit trail; the caller learns only that no credential could be had.
  too_many_processes: { status: 503, expose: true, publicMessage: 'Too many upstream processes; close a session and retry' },
  downstream_credential_unavailable: { status: 502, expose: false, publicMessage: 'No downstream credential could be obtained for this user' },
  config_invalid: { status: 500, expose: false, publicMessage: 'Internal error' },
  internal: { status: 500, expose: false, publicMessage: 'Internal error' },
};

export class BehalfError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields for the challenge header (e.g. scopes) — never secrets. */
  readonly details: Record<string, string>;

  constructor(code: ErrorCode, detail?: string, details: Record<string, string> = {}) {
    super(detail ?? SPECS[code].publicMessage);
    this.name = 'BehalfError';
    this.code = code;
    this.status = SPECS[code].status;
    this.details = details;
  }

  /** What may be said to the caller: the detail when the code is exposable, else a generic message. */
  get publicMessage(): string {
    return SPECS[this.code].expose ? this.message : SPECS[this.code].publicMessage;
  }
}

/** Anything thrown that is not a BehalfError is internal and must not leak. */
export function toBehalfError(err: unknown): BehalfError {
  return err instanceof BehalfError ? err : new BehalfError('internal');
}
