import { randomUUID } from 'node:crypto';
import { principalFields } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/event.js';
import { BehalfError, toBehalfError } from '../errors.js';
import { errorResponse, isRequest, RpcCode, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.js';
import type { Principal } from '../identity/principal.js';
import { callFacts, DEFAULT_USER_META_KEY, takeUserAssertion, userForMessage } from '../identity/user-context.js';
import { classifyMethod } from '../policy/method-table.js';
import type { CompiledPolicy } from '../policy/policy.js';
import { bucketKey } from '../policy/rate-limit.js';
import { callCredential } from '../delegation/call-credential.js';
import type { DownstreamCredential } from '../delegation/types.js';
import { authorizeMessage, filterListResult, type Authorization, type ToolLookup } from './authorize.js';
import type { RequestContext } from './context.js';
import { headerValue } from './http-io.js';
import { inboundOf } from './route.js';
import type { GatewaySession } from './session.js';
import { localAnswer, takesMessageUsers, upstreamFor } from './user-upstreams.js';

/** The one message a denied call gets back: fixed, so nothing about the rules leaks. */
const DENIED = 'Forbidden: not allowed for this user';

/** A message decided and recorded, not yet forwarded. */
export interface DecidedMessage {
  /** The message as it may be forwarded: without its signed user context. */
  msg: JsonRpcMessage;
  /** Whom this message was decided for: the request's client and this message's user. */
  principal: Principal;
  request?: JsonRpcRequest;
  authz: Authorization;
  policy: CompiledPolicy;
  audit: Partial<AuditEvent>;
  started: number;
  /** The answer when the message must not be forwarded (denied, or its decision could not be recorded). */
  refusal?: JsonRpcResponse;
  refused: boolean;
}

/**
 * Phase one of a message: decide it (policy, then rate limits) and write the
 * decision to the audit log. A failed write refuses the call (fail closed).
 * A single request refused only for missing step-up scopes throws
 * `insufficient_scope`, which the pipeline answers with 403 and a challenge
 * listing every scope the operation needs; inside a batch it becomes a
 * JSON-RPC error carrying the same scopes.
 */
export async function decideMessage(ctx: RequestContext, session: GatewaySession, received: JsonRpcMessage): Promise<DecidedMessage> {
  const { rt, route } = ctx;
  const started = performance.now();
  // One policy for the whole message: a reload in the middle cannot mix two.
  const policy = rt.policy.current;
  // The signed user context is for the gateway only: removed here, on every route, before anything can be forwarded.
  const { msg, assertion } = takeUserAssertion(received, rt.userContext?.metaKey ?? DEFAULT_USER_META_KEY);
  const method = 'method' in msg ? msg.method : 'response';
  const request = isRequest(msg) ? msg : undefined;
  let principal: Principal;
  try {
    principal = await messagePrincipal(ctx, policy, msg, assertion);
  } catch (err) {
    return refuseUserContext(ctx, session, msg, policy, started, toBehalfError(err));
  }

  let authz: Authorization;
  let tools: ToolLookup | undefined;
  try {
    if (policy.needsToolCatalog && method === 'tools/call') tools = await session.tools.lookup();
    authz = authorizeMessage(policy, principal, route.name, ctx.transport, msg, { forwardRoots: route.upstream.forwardClientRoots, tools });
  } catch {
    authz = { effect: 'deny', ruleIds: ['catalog:unavailable'], reason: 'the upstream\'s tool list could not be read' };
  }
  let retryAfterMs: number | undefined;
  if (authz.effect === 'allow' && authz.input && policy.rateLimits.length) {
    const { input, target } = authz;
    const limits = policy.rateLimits.filter((l) => l.appliesTo(route.name, target)).map((limit) => ({ limit, key: bucketKey(limit, input, target) }));
    const verdict = rt.rateLimiter.take(limits);
    if (!verdict.ok) {
      retryAfterMs = verdict.retryAfterMs;
      authz = { ...authz, effect: 'deny', ruleIds: [`rate-limit:${verdict.limitId}`], reason: `rate limited; retry after ${retryAfterMs} ms` };
    }
  }

  const audit: Partial<AuditEvent> = {
    ...auditBase(ctx, session, policy, method, authz.target?.name, principal),
    ...(authz.target && authz.args ? rt.redactor.summarize(route.name, authz.target.name, authz.args) : {}),
  };
  const decided: DecidedMessage = { msg, principal, request, authz, policy, audit, started, refused: authz.effect === 'deny' };
  try {
    await rt.audit.mustAppend({ ts: Date.now(), kind: 'decision', ...audit, decision: authz.effect, ruleIds: authz.ruleIds, reason: authz.reason });
  } catch (err) {
    decided.refused = true;
    if (request) decided.refusal = errorResponse(request.id, RpcCode.InternalError, toBehalfError(err).publicMessage);
    return decided;
  }
  if (authz.effect === 'allow' || !request) return decided;

  if (authz.stepUpScopes) {
    const scope = [...new Set([...rt.config.userAuth.scopes, ...authz.stepUpScopes])].join(' ');
    if (ctx.messages?.length === 1 && !ctx.isBatch) throw new BehalfError('insufficient_scope', undefined, { scope, audited: 'yes' });
    decided.refusal = errorResponse(request.id, RpcCode.Forbidden, 'Forbidden: insufficient scope', { error: 'insufficient_scope', scope });
  } else if (retryAfterMs !== undefined) {
    decided.refusal = errorResponse(request.id, RpcCode.RateLimited, 'Rate limit exceeded', { retryAfterMs, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) });
  } else {
    decided.refusal = errorResponse(request.id, RpcCode.Forbidden, DENIED);
  }
  return decided;
}

/** Phase two: forward an allowed message, filter list results with the same policy, record the outcome. */
export async function forwardMessage(ctx: RequestContext, session: GatewaySession, d: DecidedMessage): Promise<JsonRpcResponse | undefined> {
  const { rt, route } = ctx;
  if (d.refused) return d.refusal;
  // A signed-context route's session has no user of its own: its housekeeping stays with the gateway (user-upstreams.ts).
  const noUserHere = takesMessageUsers(route) && !d.principal.user;
  if (!d.request) {
    if (!noUserHere) await upstreamFor(ctx, session, d.principal).then((u) => u.send(d.msg)).catch(() => {});
    return undefined;
  }
  if (noUserHere) return localAnswer(d.request);
  let response: JsonRpcResponse;
  let outcome: string;
  let credential: DownstreamCredential | undefined;
  let reason: string | undefined;
  try {
    // docs/architecture.md §3 step 6: a credential for this user (and tool) before forwarding; none to be had refuses the call — never a broader one.
    // A stdio child got its user's credential when it started (per-user process).
    const strategy = route.upstream.transport === 'stdio' ? undefined : rt.delegation.get(route.name);
    if (strategy) {
      try {
        credential = await strategy.credentialFor({ principal: d.principal, upstream: route.name, tool: d.authz.target?.feature === 'tool' ? d.authz.target.name : undefined });
      } catch (err) {
        // Why goes to the log and the outcome record; the caller gets the fixed public message (the code is not exposable).
        const why = err instanceof BehalfError ? err.message : (err as Error)?.name ?? 'error';
        rt.log(`downstream credential for ${route.name} failed: ${why}`);
        throw new BehalfError('downstream_credential_unavailable', why);
      }
    }
    const upstream = await upstreamFor(ctx, session, d.principal);
    response = await callCredential.run(credential, () => upstream.request(d.request!));
    outcome = 'error' in response ? `error ${response.error.code}` : 'ok';
    if (d.authz.listFeature && 'result' in response) {
      response = { ...response, result: filterListResult(d.policy, d.principal, route.name, ctx.transport, d.authz.listFeature, response.result) };
    }
  } catch (err) {
    const e = toBehalfError(err);
    response = errorResponse(d.request.id, RpcCode.UpstreamError, e.publicMessage);
    outcome = e.code;
    if (e.code === 'downstream_credential_unavailable') reason = e.message;
  }
  rt.audit.tryAppend({ ts: Date.now(), kind: 'outcome', ...d.audit, outcome, latencyMs: performance.now() - d.started, downstreamCredentialId: credential?.id, ...(reason ? { reason } : {}) });
  return response;
}

/**
 * The principal one message is decided for. Routes that take tokens only
 * (the default) use the request's; routes that accept signed user context
 * take the user from the message's assertion (src/identity/user-context.ts).
 */
async function messagePrincipal(ctx: RequestContext, policy: CompiledPolicy, msg: JsonRpcMessage, assertion: unknown): Promise<Principal> {
  const principal = ctx.principal!;
  if (!('method' in msg)) return principal;
  const inbound = inboundOf(ctx.route);
  const verifier = inbound.includes('signed-context') ? ctx.rt.userContext : undefined;
  const headerAssertion = verifier ? headerValue(ctx.req, verifier.header) : undefined;
  if (assertion === undefined && headerAssertion === undefined && (principal.user || !verifier)) return principal;
  const cls = classifyMethod(msg.method, policy.methods);
  const needsUser = cls !== undefined && !(cls.kind === 'housekeeping' || cls.kind === 'client-roots' || (cls.kind === 'custom' && cls.decide === 'allow'));
  const user = await userForMessage({
    inbound, principal, msg, metaAssertion: assertion, headerAssertion, verifier, resource: ctx.route.resource,
    needsUser, userRequired: ctx.rt.config.userAuth.required,
  });
  return user === principal.user ? principal : { client: principal.client, user };
}

/** A message whose user context is missing or invalid: refused as that call, audited with the reason (never the assertion). */
async function refuseUserContext(ctx: RequestContext, session: GatewaySession, msg: JsonRpcMessage, policy: CompiledPolicy, started: number, e: BehalfError): Promise<DecidedMessage> {
  const { rt } = ctx;
  const request = isRequest(msg) ? msg : undefined;
  const method = 'method' in msg ? msg.method : 'response';
  const name = 'method' in msg ? callFacts(msg).name : undefined;
  const audit = auditBase(ctx, session, policy, method, typeof name === 'string' ? name : undefined, ctx.principal);
  const reason = `${e.code}: ${e.message}`;
  await rt.audit.mustAppend({ ts: Date.now(), kind: 'auth-failure', ...audit, decision: 'deny', ruleIds: ['user-context'], reason }).catch(() => {});
  return {
    msg, principal: ctx.principal!, request, policy, audit, started, refused: true,
    authz: { effect: 'deny', ruleIds: ['user-context'], reason },
    refusal: request && errorResponse(request.id, RpcCode.Forbidden, e.publicMessage),
  };
}

/** Who, where and under which policy: the fields every record of one message shares. */
function auditBase(ctx: RequestContext, session: GatewaySession, policy: CompiledPolicy, method: string, target: string | undefined, principal: Principal | undefined): Partial<AuditEvent> {
  const { route } = ctx;
  return {
    callId: randomUUID(), route: route.name, upstream: route.name, transport: ctx.transport, sessionFingerprint: session.fingerprint,
    method, target, downstreamStrategy: route.downstreamStrategy, policyVersion: policy.version,
    ...principalFields(principal),
  };
}

/** Decides, audits and forwards one client→server message; the response for requests, undefined otherwise. */
export async function dispatchMessage(ctx: RequestContext, session: GatewaySession, msg: JsonRpcMessage): Promise<JsonRpcResponse | undefined> {
  return forwardMessage(ctx, session, await decideMessage(ctx, session, msg));
}

/** Forwards `initialize` and remembers what was negotiated, so the upstream transport speaks the same version. */
export async function dispatchInitialize(ctx: RequestContext, session: GatewaySession, msg: JsonRpcMessage): Promise<JsonRpcResponse> {
  const response = await dispatchMessage(ctx, session, ctx.route.upstream.forwardClientRoots ? msg : withoutRootsCapability(msg));
  if (!response) throw new BehalfError('invalid_request', 'initialize must be a request');
  if ('result' in response) {
    const v = response.result.protocolVersion;
    if (typeof v === 'string') {
      session.protocolVersion = v;
      session.upstream.setProtocolVersion(v);
    }
    session.initializeResult = response.result;
  }
  return response;
}

/**
 * The upstream is told the client has no roots unless the route forwards
 * them, so a compliant server never asks the agent to define its sandbox.
 */
function withoutRootsCapability(msg: JsonRpcMessage): JsonRpcMessage {
  const params = 'params' in msg ? msg.params : undefined;
  const caps = params?.capabilities as Record<string, unknown> | undefined;
  if (!caps || !('roots' in caps)) return msg;
  const { roots: _roots, ...rest } = caps;
  return { ...msg, params: { ...params, capabilities: rest } } as JsonRpcMessage;
}
