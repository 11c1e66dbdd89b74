import { BehalfError, toJsonRpcError } from '../../errors.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import type { MessageStep } from '../message/context.js';
import { DECIDE_STEPS, DELIVER_STEPS, decideMessage, deliverMessage, dispatchMessage } from '../message/pipeline.js';
import type { GatewaySession } from '../session.js';
import { takesMessageUsers } from '../user-upstreams.js';
import { forwardBridged, resumeParked } from './bridge-steps.js';
import { checkRequestState, takeState, validInputResponses } from './bridge-continuation.js';
import { BRIDGEABLE_METHODS } from './input-capabilities.js';

/** The bridge issues its own input-required results (with handles): the native path's sealing step is not for them. */
const BRIDGE_DELIVER_BASE = DELIVER_STEPS.filter((s) => s.name !== 'seal_input_required');
const BRIDGED_DELIVER = replaceStep(BRIDGE_DELIVER_BASE, 'forward', forwardBridged);

function replaceStep(steps: readonly MessageStep[], name: string, by: MessageStep): MessageStep[] {
  return steps.map((s) => (s.name === name ? by : s));
}

/** The decide steps with the requestState check right after the message is read (before the user and the policy). */
function continuationDecideSteps(check: MessageStep): MessageStep[] {
  return DECIDE_STEPS.flatMap((s) => (s.name === 'strip_user_context' ? [s, check] : [s]));
}

/**
 * A stateless request on the gateway's own 2025-era connection
 * (docs/architecture.md §4, Input-required results): a call that may take
 * input (tools/call, prompts/get, resources/read) is bridged — what the
 * upstream asks the client mid-call becomes an input-required result, and a
 * retry with `requestState` continues the parked call. A signed-context
 * route is not bridged: its users' connections are per message.
 */
export async function answerStatelessRequest(
  ctx: RequestContext,
  session: GatewaySession,
  req: JsonRpcRequest,
): Promise<JsonRpcResponse | undefined> {
  if (!BRIDGEABLE_METHODS.has(req.method) || takesMessageUsers(ctx.route)) return dispatchMessage(ctx, session, req);
  const params = req.params ?? {};
  if ('inputResponses' in params && !validInputResponses(params.inputResponses))
    return toJsonRpcError(new BehalfError('input_responses_invalid'), req.id);
  if (params.requestState === undefined) return deliverMessage(await decideMessage(ctx, session, req), BRIDGED_DELIVER);
  return continueParked(ctx, session, req, (params.inputResponses ?? {}) as Record<string, Record<string, unknown>>);
}

/**
 * A retry carrying `requestState`: decided and recorded like any call (its
 * requestState checked first), then its answers go to the parked call. A
 * continuation refused after it took up its call ends that call.
 */
async function continueParked(
  ctx: RequestContext,
  session: GatewaySession,
  req: JsonRpcRequest,
  responses: Record<string, Record<string, unknown>>,
): Promise<JsonRpcResponse | undefined> {
  const state = takeState(ctx, req);
  const parked = state.refused === undefined ? state.parked : undefined;
  let resumed = false;
  try {
    const m = await decideMessage(
      ctx,
      parked?.session ?? session,
      req,
      continuationDecideSteps(checkRequestState(state)),
    );
    if (!parked) return await deliverMessage(m);
    const resume = resumeParked(parked, responses);
    const run = (mc: Parameters<MessageStep['run']>[0]) => {
      resumed = true;
      return resume.run(mc);
    };
    return await deliverMessage(m, replaceStep(BRIDGE_DELIVER_BASE, 'forward', { ...resume, run }));
  } finally {
    if (parked && !resumed) parked.call.abandon(new BehalfError('forbidden', 'the continuation was refused'));
  }
}
