import { BehalfError, describeError, toBehalfError, toJsonRpcError } from '../../errors.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import type { GatewaySession } from '../session.js';
import type { MessageContext, MessageStep } from './context.js';
import { authorize } from './steps/authorize.js';
import { filterList } from './steps/filter-list.js';
import { forward } from './steps/forward.js';
import { obtainCredential } from './steps/obtain-credential.js';
import { rateLimit } from './steps/rate-limit.js';
import { recordDecision } from './steps/record-decision.js';
import { recordOutcome } from './steps/record-outcome.js';
import { resolveUser } from './steps/resolve-user.js';
import { stripUserContext } from './steps/strip-user-context.js';
import { openContinuation, sealInputRequired } from '../stateless/continuation.js';
import { messageDone, runMessageStep } from '../../ops/message-ops.js';

/**
 * The steps every JSON-RPC message goes through, in order
 * (docs/architecture.md §3). Deciding ends with the decision on the record;
 * legacy SSE decides a single call before it acknowledges the POST, so a
 * step-up refusal can still be an HTTP 403. Adding a concern to the message
 * path means adding a step here.
 */
export const DECIDE_STEPS: readonly MessageStep[] = [
  stripUserContext,
  resolveUser,
  openContinuation,
  authorize,
  rateLimit,
  recordDecision,
];
export const DELIVER_STEPS: readonly MessageStep[] = [
  obtainCredential,
  forward,
  sealInputRequired,
  filterList,
  recordOutcome,
];
export const MESSAGE_STEPS: readonly MessageStep[] = [...DECIDE_STEPS, ...DELIVER_STEPS];

/** A message's context before its first step: the request's principal, nothing decided. */
function newMessage(http: RequestContext, session: GatewaySession, received: JsonRpcMessage): MessageContext {
  return {
    http,
    session,
    received,
    policy: http.rt.policy.current,
    started: performance.now(),
    msg: received,
    method: 'method' in received ? received.method : 'response',
    principal: http.principal!,
    recordKind: 'decision',
    allowed: false,
    answeredLocally: false,
  };
}

/**
 * Runs steps in order. After a refusal only the steps that record it run. A
 * step that throws refuses the message in its own name, with the cause
 * logged; the one exception is the decision step's step-up challenge, which
 * must become the HTTP answer of a single request.
 */
async function runSteps(m: MessageContext, steps: readonly MessageStep[]): Promise<void> {
  for (const step of steps) {
    if (m.refusal && !step.afterRefusal) continue;
    try {
      await runMessageStep(m, step);
    } catch (err) {
      if (err instanceof BehalfError && err.details.audited) throw err;
      const error = toBehalfError(err);
      if (error.code === 'internal')
        m.http.rt.log(`message step ${step.name} failed on ${m.http.route.name} ${m.method}: ${describeError(err)}`);
      m.refusal = { by: step.name, error };
    }
  }
  if (m.refusal)
    m.http.rt.debug(`refused ${m.method} on ${m.http.route.name} by ${m.refusal.by}: ${m.refusal.error.code}`);
}

/** What the client gets: the refusal as this call's JSON-RPC error, else the (filtered) upstream answer; nothing for notifications. */
function answerOf(m: MessageContext): JsonRpcResponse | undefined {
  if (!m.request) return undefined;
  if (m.refusal) return toJsonRpcError(m.refusal.error, m.request.id, m.refusal.data);
  return m.response;
}

/**
 * Phase one: decide the message and put the decision on the record. A
 * caller passes other `steps` (DECIDE_STEPS with one added) only where a
 * message needs one more check before it is decided: a stateless
 * continuation's requestState (src/gateway/stateless/).
 */
export async function decideMessage(
  http: RequestContext,
  session: GatewaySession,
  received: JsonRpcMessage,
  steps: readonly MessageStep[] = DECIDE_STEPS,
): Promise<MessageContext> {
  const m = newMessage(http, session, received);
  await runSteps(m, steps);
  return m;
}

/**
 * Phase two: credential, forward, filter, outcome; the answer for requests,
 * undefined otherwise. `steps` replaces DELIVER_STEPS only where forwarding
 * works otherwise: a stateless call bridged to a 2025-era upstream
 * (src/gateway/stateless/), whose `forward` may end in an input-required result.
 */
export async function deliverMessage(
  m: MessageContext,
  steps: readonly MessageStep[] = DELIVER_STEPS,
): Promise<JsonRpcResponse | undefined> {
  await runSteps(m, steps);
  messageDone(m);
  return answerOf(m);
}

/**
 * Phase two with other steps in place of the usual delivery: a stateless
 * `subscriptions/listen` is a stream, not a call, and is delivered by its own
 * forward step (src/gateway/stateless/listen.ts), with the same credential and
 * outcome steps around it.
 */
export async function deliverWith(
  m: MessageContext,
  steps: readonly MessageStep[],
): Promise<JsonRpcResponse | undefined> {
  await runSteps(m, steps);
  messageDone(m);
  return answerOf(m);
}

/** Decides, records and forwards one client→server message. */
export async function dispatchMessage(
  http: RequestContext,
  session: GatewaySession,
  msg: JsonRpcMessage,
): Promise<JsonRpcResponse | undefined> {
  return deliverMessage(await decideMessage(http, session, msg));
}
