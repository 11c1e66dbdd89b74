import type { GatewayConfig } from '../config/schema.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Authenticator } from '../identity/authenticator.js';
import type { SignedContextVerifier } from '../identity/user-context.js';
import type { ArgumentRedactor } from '../audit/redact.js';
import type { DownstreamStrategy, GatewaySigner } from '../delegation/types.js';
import type { KeyStoreHolder } from '../keys/holder.js';
import type { PolicyHolder } from '../policy/holder.js';
import type { RateLimiter } from '../policy/rate-limit.js';
import type { RevocationWiring } from '../revocation/wiring.js';
import type { SessionStore } from '../state/sessions.js';
import type { SharedEventLogs } from '../state/shared-event-logs.js';
import type { SharedSessions } from '../state/shared-sessions.js';
import type { FleetWiring } from './fleet-wiring.js';
import type { RuntimeLimits } from './limits/runtime-limits.js';
import type { Route } from './route.js';
import type { GatewaySession } from './session.js';
import type { InputBridge } from './stateless/input-bridge.js';
import type { UpstreamFactoryContext } from './upstream/factory.js';
import type { Operations } from '../ops/operations.js';

/** What every request shares: built once at start, read on every call. */
export interface GatewayRuntime {
  config: GatewayConfig;
  baseDir: string;
  baseUrl: string;
  routes: Map<string, Route>;
  allowedHosts: Set<string>;
  allowedOrigins: Set<string>;
  authenticator: Authenticator;
  /** The policy in force; read `.current` once per message (hot reload swaps it whole). */
  policy: PolicyHolder;
  rateLimiter: RateLimiter;
  /** With state.redis: whether this instance hears the fleet's changes in force; requests are refused while it does not. */
  fleet?: FleetWiring;
  /** Argument values and digests for audit records. */
  redactor: ArgumentRedactor;
  /** Each HTTP upstream's way of calling downstream as the user; absent = nothing user-specific is sent. */
  delegation: Map<string, DownstreamStrategy>;
  /** Client API keys (config and key store) with their lifecycle; re-read when the key store changes. */
  keys?: KeyStoreHolder;
  /** The gateway's signing identity (user assertions): the key store's, unless options.signer; JWKS at /.well-known/jwks.json. */
  signer?: GatewaySigner;
  sessions: SessionStore<GatewaySession>;
  /** With state.redis: the fleet's session records, and this instance's name in them (fleet-sessions.ts). */
  shared?: { sessions: SharedSessions; events: SharedEventLogs; instanceId: string };
  /** Gateway-initialized upstream connections for stateless (2026-07-28) requests, per route and principal: an index into `sessions`, which holds and counts them. */
  stateless: Map<string, GatewaySession>;
  /** Stateless calls parked while their client is asked for input (docs/architecture.md §4, Input-required results). */
  inputBridge: InputBridge;
  audit: AuditLog;
  /** Revocations in force, their sources and the admin endpoint (docs/revocation.md). */
  revocations?: RevocationWiring;
  /** Connections, buffered bodies and failed-authentication records, bounded together (docs/architecture.md §2). */
  limits: RuntimeLimits;
  /** The agent platform's signed user context, when userAuth.signedContext is configured (routes opt in with `inbound`). */
  userContext?: SignedContextVerifier;
  upstreamContext: UpstreamFactoryContext;
  log: (line: string) => void;
  /** Lines for debugging (each refusal with the step that made it); a no-op unless enabled. */
  debug: (line: string) => void;
  /** Structured log, metrics and traces, and the drain's count of requests in flight (src/ops/). */
  ops: Operations;
  /** Stops what the build started (policy and key watchers, strategy caches); sessions and the audit log close separately. */
  stop: () => void;
}
