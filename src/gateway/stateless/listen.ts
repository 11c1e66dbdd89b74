import { BehalfError, describeError } from '../../errors.js';
import type { JsonRpcRequest } from '../../jsonrpc.js';
import type { MessageContext, MessageStep } from '../message/context.js';
import { decideMessage, deliverWith } from '../message/pipeline.js';
import { obtainCredential } from '../message/steps/obtain-credential.js';
import { recordOutcome } from '../message/steps/record-outcome.js';
import type { RequestContext } from '../context.js';
import type { GatewaySession } from '../session.js';
import { nativeTransportOf } from './native-session.js';
import type { StatelessReply } from './reply.js';

/**
 * The forward step of a `subscriptions/listen` request: the upstream's
 * stream is relayed to the client's as it comes (its acknowledgement first,
 * then the notifications it asked for), until the client closes it — which
 * is also how it cancels — or the upstream ends it.
 */
function forwardListen(reply: StatelessReply): MessageStep {
  return {
    name: 'forward',
    why: "only an allowed, recorded subscription reaches the upstream, with this user's credential; the stream is the answer",
    async run(m: MessageContext) {
      const transport = nativeTransportOf(m.session);
      if (!transport || !m.request) throw new BehalfError('upstream_unavailable');
      const closed = new AbortController();
      m.http.res.once('close', () => closed.abort());
      const stream = reply.stream();
      try {
        for await (const msg of transport.listen(m.request, m.credential, closed.signal)) {
          if ('method' in msg && !('id' in msg)) stream.message(msg);
          else if (!('method' in msg)) {
            m.response = { ...msg, id: m.request.id } as typeof m.response;
            return;
          }
        }
      } catch (err) {
        if (closed.signal.aborted) return; // the client closed its stream: the subscription is over, nothing failed
        m.http.rt.log(`subscriptions/listen on ${m.http.route.name} failed: ${describeError(err)}`);
        throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
      }
    },
  };
}

/** A listen request is decided and recorded like a call, then delivered as a stream. */
export async function answerListen(
  ctx: RequestContext,
  session: GatewaySession,
  req: JsonRpcRequest,
  reply: StatelessReply,
): Promise<void> {
  const m = await decideMessage(ctx, session, req);
  const answer = await deliverWith(m, [obtainCredential, forwardListen(reply), recordOutcome]);
  reply.finish(answer);
}
