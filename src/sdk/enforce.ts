import { randomUUID } from 'node:crypto';
import { principalFields } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/event.js';
import { BehalfError, describeError, toJsonRpcError } from '../errors.js';
import { authorizeMessage, filterListResult, type Authorization } from '../policy/authorize.js';
import { takeForCall } from '../policy/rate-limit.js';
import { sessionFingerprint } from '../state/sessions.js';
import { callerOf, type HandlerContext, type SdkCaller } from './caller.js';
import { callRecordOf, startCallRecord } from './call-record.js';
import type { SdkRuntime } from './runtime.js';

type Handler = (request: { method: string; params?: Record<string, unknown> }, ctx: unknown) => Promise<unknown>;

/** What both SDKs' protocol objects share: the table every request is dispatched through. */
interface HandlerTable {
  _requestHandlers: Map<string, Handler>;
}

const WRAPPED = Symbol('behalf.enforced');

/** The policy's transport name for a server protected in-process. */
const TRANSPORT = 'streamable-http';

/** A refusal as the SDKs answer a thrown error: its JSON-RPC code, public message and data, from the one error table. */
export function rpcError(err: BehalfError, data?: unknown): Error {
  const { error } = toJsonRpcError(err, null, data);
  return Object.assign(new Error(error.message), {
    code: error.code,
    ...(error.data !== undefined ? { data: error.data } : {}),
  });
}

function tableOf(server: object): HandlerTable {
  const inner = (server as { server?: object }).server ?? server;
  const table = (inner as Partial<HandlerTable>)._requestHandlers;
  if (!(table instanceof Map))
    throw new BehalfError('usage', 'behalf.protect: not an MCP SDK server (McpServer or Server of v1 or v2)');
  return inner as HandlerTable;
}

function decide(rt: SdkRuntime, caller: SdkCaller, request: { method: string; params?: unknown }): Authorization {
  try {
    const msg = { jsonrpc: '2.0' as const, id: 0, method: request.method, params: request.params as never };
    return authorizeMessage(rt.policy.current, caller.principal, rt.name, TRANSPORT, msg);
  } catch (err) {
    // Rule errors are denies inside the engine already; reaching here is a defect, and it must not allow.
    rt.log(`policy evaluation failed on ${request.method}; the call is denied: ${describeError(err)}`);
    return { effect: 'deny', ruleIds: ['policy:error'], reason: 'the policy could not be evaluated' };
  }
}

interface Refusal {
  error: BehalfError;
  data?: unknown;
}

/** The policy's rate limits, as the gateway's rate_limit step applies them: only allowed calls spend a token; a limit that cannot be counted refuses. */
async function rateLimited(rt: SdkRuntime, authz: Authorization): Promise<{ authz: Authorization; refusal?: Refusal }> {
  const limits = rt.policy.current.rateLimits;
  if (authz.effect !== 'allow' || !authz.input || !limits.length) return { authz };
  try {
    const taken = takeForCall(limits, rt.rateLimiter, rt.name, authz.input, authz.target);
    const verdict = taken instanceof Promise ? await taken : taken;
    if (verdict.ok) return { authz };
    const { retryAfterMs } = verdict;
    return {
      authz: {
        ...authz,
        effect: 'deny',
        ruleIds: [`rate-limit:${verdict.limitId}`],
        reason: `rate limited; retry after ${retryAfterMs} ms`,
      },
      refusal: {
        error: new BehalfError('rate_limited'),
        data: { retryAfterMs, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) },
      },
    };
  } catch (err) {
    const error = err instanceof BehalfError ? err : new BehalfError('internal', describeError(err));
    return {
      authz: { ...authz, effect: 'deny', ruleIds: ['rate-limit'], reason: `rate limits: ${error.message}` },
      refusal: { error },
    };
  }
}

/** The session check inside the server, behind the middleware's: a handler never runs for someone else's session. */
function checkSession(rt: SdkRuntime, caller: SdkCaller, method: string, sessionId: string | undefined): void {
  if (sessionId === undefined) return;
  if (method === 'initialize') return rt.sessions.bind(sessionId, caller.principal);
  if (rt.sessions.check(sessionId, caller.principal) === 'ok') return;
  rt.audit.tryAppend({
    ts: Date.now(),
    kind: 'session-mismatch',
    route: rt.name,
    method,
    sessionFingerprint: sessionFingerprint(sessionId),
    ...principalFields(caller.principal),
  });
  throw rpcError(new BehalfError('session_unknown'));
}

/**
 * One handler behind the boundary (docs/architecture.md §3, the same order
 * as the gateway's message steps): the caller the middleware verified, the
 * session's owner, the policy's decision on the record before the handler
 * runs (a record that cannot be written refuses the call), the handler,
 * lists filtered by the call-time rules, the outcome on the record.
 */
function guarded(rt: SdkRuntime, method: string, handler: Handler): Handler {
  const run: Handler = async (request, ctx) => {
    const caller = callerOf(ctx);
    // No principal from this boundary's middleware: the request did not come through it, so nothing runs.
    if (!caller || caller.runtime !== rt) throw rpcError(new BehalfError('client_auth_required'));
    const started = performance.now();
    const sessionId = (ctx as HandlerContext).sessionId;
    checkSession(rt, caller, method, sessionId);
    const { authz, refusal } = await rateLimited(rt, decide(rt, caller, request));
    const target = authz.target;
    const base: Partial<AuditEvent> = {
      callId: randomUUID(),
      route: rt.name,
      upstream: rt.name,
      transport: TRANSPORT,
      method,
      target: target?.name,
      policyVersion: rt.policy.current.version,
      ...(sessionId ? { sessionFingerprint: sessionFingerprint(sessionId) } : {}),
      ...principalFields(caller.principal),
      ...(target && authz.args ? rt.redactor.summarize(rt.name, target.name, authz.args) : {}),
    };
    const refusedBy = refusal ? 'rate_limit' : authz.effect === 'deny' ? 'authorize' : undefined;
    try {
      await rt.audit.mustAppend({
        ts: Date.now(),
        kind: 'decision',
        ...base,
        decision: authz.effect,
        ruleIds: authz.ruleIds,
        reason: authz.reason,
        ...(refusedBy ? { refusedBy } : {}),
      });
    } catch (err) {
      throw rpcError(err instanceof BehalfError ? err : new BehalfError('audit_unavailable'));
    }
    if (refusal) throw rpcError(refusal.error, refusal.data);
    if (authz.effect !== 'allow') {
      if (!authz.stepUpScopes) throw rpcError(new BehalfError('forbidden'));
      const scope = [...new Set([...rt.config.userAuth.scopes, ...authz.stepUpScopes])].join(' ');
      throw rpcError(new BehalfError('step_up_required', undefined, { scope }), { error: 'insufficient_scope', scope });
    }
    const record = startCallRecord(ctx, target?.feature === 'tool' ? target.name : undefined);
    let outcome = 'ok';
    try {
      const result = await handler(request, ctx);
      if ((result as { isError?: unknown } | undefined)?.isError === true) outcome = 'tool error';
      return authz.listFeature
        ? filterListResult(rt.policy.current, caller.principal, rt.name, TRANSPORT, authz.listFeature, result as never)
        : result;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      outcome = typeof code === 'number' ? `error ${code}` : 'error';
      throw err;
    } finally {
      // The call was decided and ran: a failed outcome write is logged by the audit log, never turned into a refusal.
      rt.audit.tryAppend({
        ts: Date.now(),
        kind: 'outcome',
        ...base,
        outcome,
        latencyMs: performance.now() - started,
        downstreamCredentialId: callRecordOf(ctx)?.credentialIds.join(' ') || undefined,
      });
      record.done();
    }
  };
  return Object.assign(run, { [WRAPPED]: true });
}

/**
 * Puts every request handler of `server` behind the boundary: those it has
 * now and those registered later (McpServer registers its tools/call and
 * list handlers when the first tool is added). Both SDK majors dispatch
 * every request through one table of handlers by method, so wrapping the
 * table's entries is the one extension point that covers every method, the
 * SDK's own handlers (initialize, ping) included.
 */
export function enforceOn(rt: SdkRuntime, server: object): void {
  const table = tableOf(server)._requestHandlers;
  const wrap = (method: string, h: Handler): Handler =>
    (h as unknown as Record<symbol, unknown>)[WRAPPED] ? h : guarded(rt, method, h);
  for (const [method, h] of table) Map.prototype.set.call(table, method, wrap(method, h));
  const set = Map.prototype.set;
  Object.defineProperty(table, 'set', {
    value: (method: string, h: Handler) => set.call(table, method, wrap(method, h)),
    configurable: true,
  });
}
