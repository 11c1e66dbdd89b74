import { callCredential } from '../../delegation/call-credential.js';
import { BehalfError, describeError } from '../../errors.js';
import { principalKey } from '../../identity/principal.js';
import { callBinding } from '../../identity/user-context.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc.js';
import type { MessageContext, MessageStep } from '../message/context.js';
import { BridgedCall, type Round } from './bridged-call.js';
import { clientCapabilitiesOf } from './input-capabilities.js';
import type { ParkedCall } from './input-bridge.js';

/** The request as a 2025-era upstream takes it: the input-required fields mean nothing to it. */
function withoutInputFields(req: JsonRpcRequest): JsonRpcRequest {
  if (!req.params || !('inputResponses' in req.params || 'requestState' in req.params)) return req;
  const { inputResponses: _responses, requestState: _state, ...params } = req.params;
  return { ...req, params };
}

/** Ends a round: the call's answer as it is, or an input-required result naming the parked call by a new handle. */
function answerRound(m: MessageContext, call: BridgedCall, round: Round, firstCallId: string): JsonRpcResponse {
  const req = m.request!;
  // The upstream answers the call under the id of the request that began it; this request has its own.
  if ('response' in round) return { ...round.response, id: req.id };
  const { http, session } = m;
  let handle: string;
  try {
    handle = http.rt.inputBridge.park(
      {
        call,
        session,
        principalKey: principalKey(m.principal),
        route: http.route.name,
        binding: callBinding(req),
        firstCallId,
      },
      http.route.upstream.requestTimeoutMs,
    );
  } catch (err) {
    // Not parked, so nobody will answer: the upstream's requests get the refusal and its call can end.
    call.abandon(err instanceof BehalfError ? err : new BehalfError('internal'));
    throw err;
  }
  return {
    jsonrpc: '2.0',
    id: req.id,
    result: { resultType: 'input_required', inputRequests: round.inputRequests, requestState: handle },
  };
}

/** A round's failure as forward reports it: typed errors as they are, anything else as the upstream being unavailable. */
async function playRound(m: MessageContext, call: BridgedCall): Promise<Round> {
  try {
    return await call.nextRound(clientCapabilitiesOf(m.request!));
  } catch (err) {
    if (err instanceof BehalfError) throw err;
    m.http.rt.log(`${m.method} to ${m.http.route.name} failed: ${describeError(err)}`);
    throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
  }
}

/**
 * `forward` for a stateless call to a 2025-era upstream: the call is its own
 * related sink, so what the upstream asks the client in the middle of it
 * (elicitation, sampling, roots) ends this request with an input-required
 * result while the upstream call waits, parked, for the client's retry.
 */
export const forwardBridged: MessageStep = {
  name: 'forward',
  why: "as forward; a stateless client has no stream for the upstream's requests, so they become an input-required result",
  async run(m) {
    const { http, session } = m;
    const call = new BridgedCall(session.upstream, http.rt.log);
    call.track(session.upstream.request(withoutInputFields(m.request!), { credential: m.credential, related: call }));
    m.response = answerRound(m, call, await playRound(m, call), m.audit!.callId!);
  },
};

/**
 * The deliver step of a continuation, in place of `forward`: the client's
 * answers go to the parked call's upstream requests (under this call's own
 * credential), then the call plays on to its answer or its next request for
 * input. Nothing is forwarded anew: the upstream already has the call.
 */
export function resumeParked(parked: ParkedCall, responses: Record<string, Record<string, unknown>>): MessageStep {
  return {
    name: 'resume_call',
    why: 'in place of forward, for a continuation decided and recorded like any call: its answers go to the waiting call',
    async run(m) {
      const { call } = parked;
      try {
        for (const key of call.keys)
          if (responses[key]) await callCredential.run(m.credential, () => call.answer(key, responses[key]!));
      } catch (err) {
        call.abandon(new BehalfError('upstream_unavailable'));
        throw err;
      }
      m.response = answerRound(m, call, await playRound(m, call), parked.firstCallId);
    },
  };
}
