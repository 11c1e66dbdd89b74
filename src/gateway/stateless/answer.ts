import { isRequest, type JsonRpcMessage } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import { dispatchMessage } from '../message/pipeline.js';
import { answerBridged, toStatelessResponse } from '../handlers/stateless.js';
import { answerListen } from './listen.js';
import { nativeSession } from './native-session.js';
import type { StatelessTarget } from './native-transport.js';
import { StatelessReply } from './reply.js';
import { noteUpstreamFailure, upstreamEra } from './upstream-era.js';

/** Native: one request, one upstream POST, through the whole message pipeline on a session made for it alone. */
async function answerNative(ctx: RequestContext, target: StatelessTarget, msg: JsonRpcMessage): Promise<void> {
  const session = nativeSession(ctx, target);
  ctx.session = session;
  const reply = new StatelessReply(ctx.res);
  ctx.relatedSink = reply;
  try {
    if (isRequest(msg) && msg.method === 'subscriptions/listen') return await answerListen(ctx, session, msg, reply);
    const response = await dispatchMessage(ctx, session, msg);
    noteUpstreamFailure(ctx, response);
    reply.finish(response && isRequest(msg) ? toStatelessResponse(msg.method, response) : response);
  } finally {
    void session.upstream.close();
  }
}

/**
 * A stateless (2026-07-28) request, already checked (request-checks.ts):
 * forwarded as it is to an upstream that speaks the revision, else bridged
 * through a session the gateway keeps with a 2025-era upstream.
 */
export async function answerStateless(ctx: RequestContext): Promise<void> {
  const msg = ctx.messages![0]!;
  const era = await upstreamEra(ctx);
  if (era.kind === 'native') return answerNative(ctx, era.target, msg);
  return answerBridged(ctx, msg);
}
