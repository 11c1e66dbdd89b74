import type { AuditEvent } from '../../audit/event.js';
import type { DownstreamCredential } from '../../delegation/types.js';
import type { BehalfError } from '../../errors.js';
import type { Principal } from '../../identity/principal.js';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc.js';
import type { Authorization } from '../../policy/authorize.js';
import type { CompiledPolicy } from '../../policy/policy.js';
import type { RequestContext } from '../context.js';
import type { GatewaySession } from '../session.js';
import type { TraceSpan } from '../../ops/tracing.js';

/** Why a message is not forwarded, or not answered by its upstream: the step that said so and what the client is told. */
export interface Refusal {
  /** The name of the message step that refused (`refusedBy` in the audit record). */
  by: string;
  error: BehalfError;
  /** JSON-RPC `data` the client may see (scopes for step-up, retry time for rate limits). */
  data?: unknown;
}

/**
 * Everything one JSON-RPC message accumulates on its way through the message
 * pipeline (docs/architecture.md §3). The downstream credential travels here,
 * in `credential`, from the step that obtains it to the one that forwards.
 */
export interface MessageContext {
  readonly http: RequestContext;
  readonly session: GatewaySession;
  /** One policy for the whole message: a reload in the middle cannot mix two. */
  readonly policy: CompiledPolicy;
  readonly started: number;
  readonly received: JsonRpcMessage;
  /** The message as it may be forwarded: without its signed user context. */
  msg: JsonRpcMessage;
  /** What `params._meta[metaKey]` held, for the gateway only. */
  assertion?: unknown;
  /** The JSON-RPC method, or `response` for an answer to an upstream's request. */
  method: string;
  request?: JsonRpcRequest;
  /** Whom this message is decided for: the request's client and this message's user. */
  principal: Principal;
  authz?: Authorization;
  /** The tool, resource or prompt name for the audit record, when no authorization named it. */
  targetName?: string;
  /** Record kind of the decision: a user-context failure is an authentication failure. */
  recordKind: 'decision' | 'auth-failure';
  /** The fields every audit record of this message shares, set when the decision is recorded. */
  audit?: Partial<AuditEvent>;
  /** Set once the decision is on the record and allows the call. */
  allowed: boolean;
  refusal?: Refusal;
  /** This call's downstream credential: for this user and tool, never the client's. */
  credential?: DownstreamCredential;
  response?: JsonRpcResponse;
  /** A continuation of an input-required call (native or bridged): the `callId` of its first request, on every record of this one. */
  continuationOf?: string;
  /** The gateway answered the message itself: nothing was forwarded, so there is no outcome to record. */
  answeredLocally: boolean;
  /** The seq of the decision's audit record, for the log line that reports it. */
  auditSeq?: number;
  /** With tracing: this message's span, and the forward step's span that upstream requests name as their parent. */
  span?: TraceSpan;
  outboundTrace?: TraceSpan;
}

/** One step of the message pipeline: a verb-named module and why it sits where it does. */
export interface MessageStep {
  name: string;
  why: string;
  /** Runs even after an earlier step refused the message (the steps that put the refusal on the record). */
  afterRefusal?: boolean;
  run(m: MessageContext): void | Promise<void>;
}
