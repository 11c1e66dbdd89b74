import { BehalfError } from '../../errors.js';
import { principalKey } from '../../identity/principal.js';
import { callBinding } from '../../identity/user-context.js';
import type { JsonRpcRequest } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import type { MessageStep } from '../message/context.js';
import type { ParkedCall } from './input-bridge.js';

/** A continuation's requestState, taken up before the message is decided: the parked call, or why there is none. */
export type TakenState = { parked: ParkedCall; refused?: string } | { parked?: undefined; refused: string };

/**
 * Takes up the call a continuation names. Its own principal's handle is used
 * up here even when the continuation is then refused (another call's
 * arguments, a policy denial): a handle serves one retry, never a second try.
 */
export function takeState(ctx: RequestContext, req: JsonRpcRequest): TakenState {
  const handle = req.params?.requestState;
  if (typeof handle !== 'string') return { refused: 'requestState is not a string' };
  const taken = ctx.rt.inputBridge.take(handle, principalKey(ctx.principal!), ctx.route.name);
  if ('refused' in taken) return taken;
  if (taken.parked.binding !== callBinding(req)) {
    taken.parked.call.abandon(new BehalfError('forbidden', 'the continuation was not the same call'));
    return { parked: taken.parked, refused: 'requestState of a different call (method, name or arguments changed)' };
  }
  return taken;
}

/**
 * The decide step that puts a continuation's requestState on the record: a
 * valid one links every record of this request to the first one
 * (`continuationOf`); any other is refused, with the same answer whatever was
 * wrong with it, and the reason only in the audit record.
 */
export function checkRequestState(state: TakenState): MessageStep {
  return {
    name: 'check_request_state',
    why: 'before the user and the policy: a continuation must name a call parked for this principal, and be that call',
    run(m) {
      if (state.parked) m.continuationOf = state.parked.firstCallId;
      if (state.refused === undefined) return;
      const target = m.request?.params?.name ?? m.request?.params?.uri;
      if (typeof target === 'string') m.targetName = target;
      m.authz = { effect: 'deny', ruleIds: ['bridge:request-state'], reason: state.refused };
      m.refusal = { by: this.name, error: new BehalfError('request_state_invalid') };
    },
  };
}

/** Whether `v` is a valid `inputResponses`: an object whose every value is a result (an object). */
export function validInputResponses(v: unknown): v is Record<string, Record<string, unknown>> {
  const isObject = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
  return isObject(v) && Object.values(v as object).every(isObject);
}
