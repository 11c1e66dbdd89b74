import { isNativeSession } from './native-session.js';
import { BehalfError } from '../../errors.js';
import { principalKey } from '../../identity/principal.js';
import { callBinding } from '../../identity/user-context.js';
import type { JsonRpcRequest } from '../../jsonrpc.js';
import type { MessageContext, MessageStep } from '../message/context.js';
import { INPUT_REQUIRED_METHODS } from '../protocol.js';
import {
  newNonce,
  openRequestState,
  REQUEST_STATE_TTL_MS,
  sealRequestState,
  spendNonce,
  type SealedState,
} from './request-state.js';

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function bindsContinuations(m: MessageContext): m is MessageContext & { request: JsonRpcRequest } {
  // Bridged sessions (a 2025-era upstream) park calls under handles of their own instead (bridge-continuation.ts).
  return isNativeSession(m.session) && m.request !== undefined && INPUT_REQUIRED_METHODS.has(m.method);
}

/** A refused continuation is denied on the record with why; the client is told only that its requestState is invalid. */
function refuse(m: MessageContext, by: string, why: string): void {
  m.authz = { effect: 'deny', ruleIds: ['request-state:invalid'], reason: why };
  m.refusal = { by, error: new BehalfError('request_state_invalid', why) };
}

/** What makes a state belong to this very request: who sends it, where, and which call with which arguments. */
function mismatch(m: MessageContext & { request: JsonRpcRequest }, s: SealedState): string | undefined {
  if (Date.now() > s.expires) return 'requestState expired';
  if (s.principal !== principalKey(m.principal)) return 'requestState issued to another principal';
  if (s.route !== m.http.route.name) return 'requestState issued on another route';
  if (s.call !== callBinding(m.request)) return 'requestState issued for another call or other arguments';
  return undefined;
}

/**
 * A retry carrying the gateway's requestState continues an input-required
 * call: it must be sealed by this gateway, for this principal, route, method,
 * name and arguments, unexpired and unused. It then goes on to be authorized
 * like any call, and is forwarded with the upstream's own requestState and
 * only the answers the client was asked for. A request without requestState
 * is an ordinary call: the gateway vouched for nothing in it.
 */
export const openContinuation: MessageStep = {
  name: 'open_continuation',
  why: 'after the user is known (the state names her) and before authorize, which decides the call the state belongs to; a tampered, foreign, stale or replayed state is refused and recorded',
  run(m) {
    if (!bindsContinuations(m)) return;
    const params = obj(m.request.params) ?? {};
    if (params.requestState === undefined) return;
    const opened = openRequestState(m.http.rt, params.requestState);
    if ('refused' in opened) return refuse(m, this.name, opened.refused);
    const wrong = mismatch(m, opened);
    if (wrong) return refuse(m, this.name, wrong);
    if (!spendNonce(m.http.rt, opened)) return refuse(m, this.name, 'requestState already used');
    m.continuationOf = opened.first;
    const answers = obj(params.inputResponses);
    const forwarded: Record<string, unknown> = { ...params };
    delete forwarded.requestState;
    if (opened.upstream !== undefined) forwarded.requestState = opened.upstream;
    if (answers)
      forwarded.inputResponses = Object.fromEntries(Object.entries(answers).filter(([k]) => opened.keys.includes(k)));
    m.request = { ...m.request, params: forwarded };
    m.msg = m.request;
  },
};

/** The input requests the gateway passes to a client: the three MRTR kinds, roots only where the route forwards them. */
function passedInputRequests(m: MessageContext, requests: Record<string, unknown>): Record<string, unknown> {
  const roots = m.http.route.upstream.forwardClientRoots;
  return Object.fromEntries(
    Object.entries(requests).filter(([, r]) => {
      const method = obj(r)?.method;
      return (
        method === 'elicitation/create' || method === 'sampling/createMessage' || (roots && method === 'roots/list')
      );
    }),
  );
}

/**
 * An input-required result always leaves with a requestState of the
 * gateway's own, so the retry can be bound to this principal and call; the
 * upstream's state travels sealed inside it. A result kind the gateway does
 * not know is not passed on.
 */
export const sealInputRequired: MessageStep = {
  name: 'seal_input_required',
  why: 'right after forward and before the list filter: the client never sees an input-required result without the binding the continuation is checked against',
  run(m) {
    if (m.session.kind !== 'stateless' || !m.request || !m.response || !('result' in m.response)) return;
    const result = m.response.result;
    const kind = result.resultType;
    if (kind === undefined || kind === 'complete') return;
    if (kind !== 'input_required' || !bindsContinuations(m)) {
      m.http.rt.log(
        `upstream ${m.http.route.name} answered ${m.method} with result kind ${String(kind)}: not passed on`,
      );
      m.refusal = { by: this.name, error: new BehalfError('upstream_unavailable') };
      return;
    }
    const inputRequests = passedInputRequests(m, obj(result.inputRequests) ?? {});
    const requestState = sealRequestState(m.http.rt, {
      principal: principalKey(m.principal),
      route: m.http.route.name,
      call: callBinding(m.request),
      expires: Date.now() + REQUEST_STATE_TTL_MS,
      nonce: newNonce(),
      ...(typeof result.requestState === 'string' ? { upstream: result.requestState } : {}),
      first: m.continuationOf ?? m.audit?.callId ?? '',
      keys: Object.keys(inputRequests),
    });
    m.response = { ...m.response, result: { ...result, inputRequests, requestState } };
  },
};
