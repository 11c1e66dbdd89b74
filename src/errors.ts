/**
 * The one table of typed errors (docs/architecture.md §6). Callers switch on
 * `code`, never on messages. Two audiences, two tables:
 *
 * - WIRE: what a client of the gateway may be told. Each code has its HTTP
 *   status, its JSON-RPC error code (`rpc`), whether its detail may be shown
 *   (`expose`) and the fixed public message used when it may not, so
 *   internals never leak.
 * - OPERATOR: what the CLI or an embedding program is told when something it
 *   asked for cannot be done; each has the process exit code the CLI uses.
 *   Such an error never reaches the wire as itself: a client sees `internal`.
 *
 * Every JSON-RPC error number the gateway sends is in RPC below; a test fails
 * if one appears anywhere else in src/.
 */
import { looksLikeSecret } from './shared/secret-shapes.js';

/** JSON-RPC 2.0 error numbers: the specification's, then the server-defined range the gateway uses. */
export const RPC = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** HTTP-level refusals (authentication, session, transport), as the official SDK's server answers them. */
  ServerError: -32000,
  /** The official SDK client's request timeout; some servers also refuse with it. */
  RequestTimeout: -32001,
  /** The gateway refused the call for this user (policy, scope, user context). */
  Forbidden: -32003,
  /** The call was allowed but the upstream (or a credential for it) could not answer it. */
  UpstreamError: -32010,
  /** A rate limit refused the call; `data.retryAfterMs` says when to try again. */
  RateLimited: -32029,
  /** 2026-07-28: the request's mirrored HTTP headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name) are missing or do not match its body. */
  HeaderMismatch: -32020,
  /** 2026-07-28: serving the request needs a client capability the request did not declare. */
  MissingRequiredClientCapability: -32021,
  /** 2026-07-28: the requested protocol version is not served; `data` lists `supported` and echoes `requested`. */
  UnsupportedProtocolVersion: -32022,
} as const;

export type WireCode =
  | 'body_too_large'
  | 'body_timeout'
  | 'json_too_deep'
  | 'json_too_many_keys'
  | 'batch_not_supported'
  | 'over_capacity'
  | 'parse_error'
  | 'invalid_request'
  | 'unsupported_media_type'
  | 'not_acceptable'
  | 'method_not_allowed'
  | 'origin_not_allowed'
  | 'host_not_allowed'
  | 'unsupported_protocol_version'
  | 'header_mismatch'
  | 'request_meta_invalid'
  | 'method_not_found'
  | 'request_state_invalid'
  | 'unknown_route'
  | 'client_auth_required'
  | 'client_auth_invalid'
  | 'user_token_required'
  | 'user_token_invalid'
  | 'delegation_mismatch'
  | 'user_context_required'
  | 'user_context_invalid'
  | 'insufficient_scope'
  | 'step_up_required'
  | 'session_unknown'
  | 'session_required'
  | 'forbidden'
  | 'rate_limited'
  | 'not_available_here'
  | 'no_client_stream'
  | 'input_responses_invalid'
  | 'client_capability_missing'
  | 'client_input_expired'
  | 'audit_unavailable'
  | 'state_unavailable'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'downstream_credential_unavailable'
  | 'too_many_processes'
  | 'session_quota_exceeded'
  | 'stream_quota_exceeded'
  | 'too_many_sessions'
  | 'internal';

export type OperatorCode =
  | 'usage'
  | 'config_invalid'
  | 'yaml_invalid'
  | 'policy_invalid'
  | 'profile_invalid'
  | 'key_change_refused'
  | 'store_unavailable'
  | 'store_locked'
  | 'credential_command_failed'
  | 'review_budget_exceeded'
  | 'unsafe_call_refused'
  | 'pack_unreadable'
  | 'pack_invalid'
  | 'secret_in_pack';

export type ErrorCode = WireCode | OperatorCode;

interface WireSpec {
  status: number;
  rpc: number;
  expose: boolean;
  publicMessage: string;
}

// prettier-ignore
const WIRE: Record<WireCode, WireSpec> = {
  body_too_large: { status: 413, rpc: RPC.InvalidRequest, expose: true, publicMessage: 'Request body too large' },
  body_timeout: { status: 408, rpc: RPC.ServerError, expose: true, publicMessage: 'Request body not received in time' },
  // Bounds checked by a pre-scan before JSON.parse (src/gateway/json-bounds.ts); the detail names the configured bound.
  json_too_deep: { status: 400, rpc: RPC.InvalidParams, expose: true, publicMessage: 'Invalid params: nesting too deep' },
  json_too_many_keys: { status: 413, rpc: RPC.InvalidRequest, expose: true, publicMessage: 'Request too large: too many keys and array elements' },
  // Batches exist in 2024-11-05 and 2025-03-26 only; the detail names the request's version.
  batch_not_supported: { status: 400, rpc: RPC.InvalidRequest, expose: true, publicMessage: 'Invalid JSON-RPC request: batches are not supported in this protocol version' },
  // A resource cap (connections, buffered body bytes): answered with Retry-After, logged once per interval.
  over_capacity: { status: 503, rpc: RPC.ServerError, expose: true, publicMessage: 'Server busy: try again later' },
  parse_error: { status: 400, rpc: RPC.ParseError, expose: true, publicMessage: 'Parse error: body is not valid JSON' },
  invalid_request: { status: 400, rpc: RPC.InvalidRequest, expose: true, publicMessage: 'Invalid JSON-RPC request' },
  unsupported_media_type: { status: 415, rpc: RPC.ServerError, expose: true, publicMessage: 'Content-Type must be application/json' },
  not_acceptable: { status: 406, rpc: RPC.ServerError, expose: true, publicMessage: 'Accept must include application/json and text/event-stream' },
  method_not_allowed: { status: 405, rpc: RPC.ServerError, expose: true, publicMessage: 'HTTP method not allowed here' },
  origin_not_allowed: { status: 403, rpc: RPC.ServerError, expose: true, publicMessage: 'Origin not allowed' },
  host_not_allowed: { status: 403, rpc: RPC.ServerError, expose: true, publicMessage: 'Host not allowed' },
  // The 2026-07-28 UnsupportedProtocolVersionError; the stateless check adds data { supported, requested } (src/gateway/stateless/request-checks.ts).
  unsupported_protocol_version: { status: 400, rpc: RPC.UnsupportedProtocolVersion, expose: true, publicMessage: 'Unsupported protocol version' },
  // Stateless requests (2026-07-28): the detail names the header; the gateway enforces these MUSTs itself, whatever its upstream does.
  header_mismatch: { status: 400, rpc: RPC.HeaderMismatch, expose: true, publicMessage: 'Header mismatch' },
  request_meta_invalid: { status: 400, rpc: RPC.InvalidParams, expose: true, publicMessage: 'Invalid params: _meta must carry io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities' },
  // A method the stateless revision removed, or one the gateway does not know (2026-07-28 answers these 404).
  method_not_found: { status: 404, rpc: RPC.MethodNotFound, expose: true, publicMessage: 'Method not found' },
  // A continuation's requestState that fails the seal, belongs to another call or principal, expired, or was used before: which one goes to the audit record only.
  request_state_invalid: { status: 400, rpc: RPC.InvalidParams, expose: false, publicMessage: 'Invalid params: requestState is not valid for this request' },
  unknown_route: { status: 404, rpc: RPC.ServerError, expose: true, publicMessage: 'No MCP server at this path' },
  client_auth_required: { status: 401, rpc: RPC.ServerError, expose: true, publicMessage: 'Client authentication required' },
  // Why a credential failed (unknown key, untrusted issuer, bad signature …) is an oracle: audit log only.
  client_auth_invalid: { status: 401, rpc: RPC.ServerError, expose: false, publicMessage: 'Client authentication failed' },
  user_token_required: { status: 401, rpc: RPC.ServerError, expose: true, publicMessage: 'User authentication required' },
  user_token_invalid: { status: 401, rpc: RPC.ServerError, expose: false, publicMessage: 'User token is invalid' },
  delegation_mismatch: { status: 401, rpc: RPC.ServerError, expose: true, publicMessage: 'User token was not issued to this client' },
  // Signed user context (per message): answered as a JSON-RPC error of that call; why it failed goes to the audit trail only.
  user_context_required: { status: 401, rpc: RPC.Forbidden, expose: true, publicMessage: 'Signed user context required' },
  user_context_invalid: { status: 401, rpc: RPC.Forbidden, expose: false, publicMessage: 'Signed user context is invalid' },
  insufficient_scope: { status: 403, rpc: RPC.ServerError, expose: true, publicMessage: 'Insufficient scope' },
  // A call inside a batch that needs step-up scopes: the batch cannot be a 403, so the call's own error carries the scopes in data.
  step_up_required: { status: 403, rpc: RPC.Forbidden, expose: false, publicMessage: 'Forbidden: insufficient scope' },
  session_unknown: { status: 404, rpc: RPC.ServerError, expose: true, publicMessage: 'Session not found' },
  session_required: { status: 400, rpc: RPC.InvalidRequest, expose: true, publicMessage: 'Mcp-Session-Id header required' },
  // One fixed answer for every policy denial, so nothing about the rules leaks.
  forbidden: { status: 403, rpc: RPC.Forbidden, expose: false, publicMessage: 'Forbidden: not allowed for this user' },
  rate_limited: { status: 429, rpc: RPC.RateLimited, expose: false, publicMessage: 'Rate limit exceeded' },
  // An upstream's request the gateway answers itself (roots it was never offered, requests on per-user connections).
  not_available_here: { status: 404, rpc: RPC.MethodNotFound, expose: true, publicMessage: 'Not available through this gateway route' },
  no_client_stream: { status: 503, rpc: RPC.InternalError, expose: true, publicMessage: 'No client stream is open to deliver this request' },
  // Input-required results bridged for a 2025-era upstream (src/gateway/stateless/): the first answers the client,
  // the last two the upstream's own request (a bad requestState, on either path, is request_state_invalid above).
  input_responses_invalid: { status: 400, rpc: RPC.InvalidParams, expose: true, publicMessage: 'Invalid params: inputResponses must be an object whose values are results' },
  client_capability_missing: { status: 400, rpc: RPC.MissingRequiredClientCapability, expose: true, publicMessage: 'The client did not declare the capability this request needs' },
  client_input_expired: { status: 504, rpc: RPC.RequestTimeout, expose: true, publicMessage: 'The client did not answer this request in time' },
  audit_unavailable: { status: 503, rpc: RPC.InternalError, expose: true, publicMessage: 'Request refused: audit log unavailable' },
  // The fleet's shared state (Redis): never answered from one instance's memory instead; which command failed goes to the log only.
  state_unavailable: { status: 503, rpc: RPC.InternalError, expose: false, publicMessage: 'Request refused: shared gateway state unavailable; retry shortly' },
  upstream_unavailable: { status: 502, rpc: RPC.UpstreamError, expose: true, publicMessage: 'Upstream MCP server unavailable' },
  upstream_timeout: { status: 504, rpc: RPC.UpstreamError, expose: true, publicMessage: 'Upstream MCP server timed out' },
  // Why (IdP down, exchange refused) goes to the audit trail; the caller learns only that no credential could be had.
  downstream_credential_unavailable: { status: 502, rpc: RPC.UpstreamError, expose: false, publicMessage: 'No downstream credential could be obtained for this user' },
  too_many_processes: { status: 503, rpc: RPC.ServerError, expose: true, publicMessage: 'Too many upstream processes; close a session and retry' },
  // Per user (or per client without a user): her own limit, not the gateway's; Retry-After says when one of hers may be evicted.
  session_quota_exceeded: { status: 429, rpc: RPC.ServerError, expose: true, publicMessage: 'Session quota exceeded: end a session (DELETE) or retry later' },
  stream_quota_exceeded: { status: 429, rpc: RPC.ServerError, expose: true, publicMessage: 'Stream quota exceeded: close a stream or retry later' },
  // The gateway-wide cap: nobody's fault in particular, so 503 with Retry-After, never 502 (the upstream is fine).
  too_many_sessions: { status: 503, rpc: RPC.ServerError, expose: true, publicMessage: 'Gateway at its session limit; retry later' },
  internal: { status: 500, rpc: RPC.InternalError, expose: false, publicMessage: 'Internal error' },
};

/** Process exit codes of the CLI: 0 done, 1 a failure the command reports (a check, a verification, a file that does not pass). */
export const EXIT = {
  ok: 0,
  failed: 1,
  /** The command line, or what it asks for, is wrong: fix what you typed. */
  usage: 2,
  /** Something the command needs (a database, a lock, a service) cannot be used now: not your typing. */
  unavailable: 3,
} as const;

interface OperatorSpec {
  exit: number;
  summary: string;
}

// Exit codes keep what each command has always done: a file that a command checks (config,
// policy, policy test) and that fails exits 1 like any failed check; the review profile is part
// of `behalf review`'s command line, whose usage errors exit 2 (docs/architecture.md §6).
// prettier-ignore
const OPERATOR: Record<OperatorCode, OperatorSpec> = {
  usage: { exit: EXIT.usage, summary: 'bad command line' },
  config_invalid: { exit: EXIT.failed, summary: 'the gateway configuration is invalid' },
  yaml_invalid: { exit: EXIT.failed, summary: 'a YAML file cannot be read or is not valid YAML' },
  policy_invalid: { exit: EXIT.failed, summary: 'a policy or policy test file is invalid' },
  profile_invalid: { exit: EXIT.usage, summary: 'the review profile is invalid' },
  key_change_refused: { exit: EXIT.usage, summary: 'the key store refuses the change (no such key, already revoked, id taken)' },
  store_unavailable: { exit: EXIT.unavailable, summary: 'a store (audit database, key store) cannot be opened or used' },
  store_locked: { exit: EXIT.unavailable, summary: 'a store is locked by another writer' },
  credential_command_failed: { exit: EXIT.usage, summary: 'a credential command of the review profile failed' },
  review_budget_exceeded: { exit: EXIT.failed, summary: 'the review ran out of its request budget' },
  unsafe_call_refused: { exit: EXIT.usage, summary: 'the review refused a call the profile does not mark safe' },
  pack_unreadable: { exit: EXIT.failed, summary: 'a file or folder is not a readable evidence pack' },
  pack_invalid: { exit: EXIT.failed, summary: 'an evidence pack is invalid' },
  secret_in_pack: { exit: EXIT.failed, summary: 'an evidence pack would have held a credential; nothing was written' },
};

function isWire(code: ErrorCode): code is WireCode {
  return code in WIRE;
}

export class BehalfError extends Error {
  readonly code: ErrorCode;
  /** Extra fields for the challenge header (e.g. scopes) — never secrets. */
  readonly details: Record<string, string>;
  /** JSON-RPC `data` the client may see with this error (what an UnsupportedProtocolVersionError lists). */
  readonly data?: unknown;

  constructor(
    code: ErrorCode,
    detail?: string,
    details: Record<string, string> = {},
    options?: { cause?: unknown; data?: unknown },
  ) {
    super(detail ?? (isWire(code) ? WIRE[code].publicMessage : OPERATOR[code].summary), options);
    this.name = 'BehalfError';
    this.code = code;
    this.details = details;
    if (options?.data !== undefined) this.data = options.data;
  }

  /** How this error is answered on the wire: an operator error is internal there. */
  private get wire(): WireSpec {
    return isWire(this.code) ? WIRE[this.code] : WIRE.internal;
  }

  get status(): number {
    return this.wire.status;
  }

  get rpc(): number {
    return this.wire.rpc;
  }

  /** What may be said to the caller: the detail when the code is exposable, else a generic message. */
  get publicMessage(): string {
    return isWire(this.code) && this.wire.expose ? this.message : this.wire.publicMessage;
  }

  get exitCode(): number {
    return isWire(this.code) ? EXIT.failed : OPERATOR[this.code].exit;
  }
}

/** Anything thrown that is not a BehalfError is internal and must not leak; the original stays as the cause for the log. */
export function toBehalfError(err: unknown): BehalfError {
  return err instanceof BehalfError ? err : new BehalfError('internal', undefined, {}, { cause: err });
}

/** The one builder of JSON-RPC error responses: code and message from the table, `data` only what the caller may see. */
export function toJsonRpcError(
  err: unknown,
  id: string | number | null,
  data?: unknown,
): { jsonrpc: '2.0'; id: string | number | null; error: { code: number; message: string; data?: unknown } } {
  const e = toBehalfError(err);
  const shown = data ?? e.data;
  const error =
    shown === undefined
      ? { code: e.rpc, message: e.publicMessage }
      : { code: e.rpc, message: e.publicMessage, data: shown };
  return { jsonrpc: '2.0', id, error };
}

/** What a log line may say about a failure: the code and the operator detail, with the cause's name and message. */
export function describeError(err: unknown): string {
  if (err instanceof BehalfError) {
    const cause = err.cause === undefined ? '' : ` (cause: ${describeError(err.cause)})`;
    return `${err.code}: ${err.message}${cause}`;
  }
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  // Parser and library messages can quote their input, and that input may be a token.
  return looksLikeSecret(text)
    ? `${err instanceof Error ? err.name : 'error'}: [message withheld: it quotes a credential]`
    : text;
}
