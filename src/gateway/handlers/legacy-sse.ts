import { BehalfError } from '../../errors.js';
import type { RequestContext, Step } from '../context.js';
import type { GatewaySession } from '../session.js';
import { dispatchInitialize } from '../message/initialize.js';
import { decideMessage, deliverMessage, dispatchMessage } from '../message/pipeline.js';
import { createSession, endSession, requireBoundSession } from '../session-binding.js';
import { SseWriter } from '../sse-writer.js';
import { refuseUnsupportedBatch } from '../steps/batches.js';
import { closeStreamAtExpiry } from '../stream-expiry.js';
import { isRequest } from '../../jsonrpc.js';

/** GET …/sse: opens a 2024-11-05 stream and announces the POST endpoint for this session. */
export const openLegacyStream: Step = {
  name: 'open_legacy_stream',
  why: 'the stream is opened only by an authenticated principal, who alone may post to it',
  async run(ctx) {
    const session = await createSession(ctx, 'legacy-sse');
    const writer = new SseWriter(ctx.res);
    session.stream = writer;
    session.upstream.listen();
    writer.onClose = () => endSession(ctx.rt, session, 'stream closed');
    writer.event('endpoint', `${ctx.route.messagesPath}?sessionId=${encodeURIComponent(session.id)}`);
    closeStreamAtExpiry(session, () => endSession(ctx.rt, session, 'token expired'));
  },
};

/** POST …/messages?sessionId=: every POST is authenticated again and must be the stream's principal. */
export const handleLegacyPost: Step = {
  name: 'handle_legacy_post',
  why: 'answers go to the stream; the POST itself only acknowledges',
  async run(ctx) {
    const session = requireBoundSession(ctx, ctx.url.searchParams.get('sessionId') ?? undefined);
    // requireBoundSession already refused sessions of the other transport; a legacy session without its stream is over.
    if (!session.stream) throw new BehalfError('session_unknown');
    ctx.session = session;
    ctx.relatedSink = session.stream;
    refuseUnsupportedBatch(ctx, session);
    session.inFlight++;
    try {
      await answerLegacyPost(ctx, session, session.stream);
    } finally {
      session.inFlight--;
      session.lastSeen = Date.now();
    }
  },
};

/** Acknowledges the POST and answers its messages on the session's stream. */
async function answerLegacyPost(ctx: RequestContext, session: GatewaySession, stream: SseWriter): Promise<void> {
  const msgs = ctx.messages!;
  // A single call is decided before the POST is acknowledged, so a step-up refusal can still be a 403 with its challenge.
  const first =
    msgs.length === 1 && !ctx.isBatch && !(isRequest(msgs[0]!) && msgs[0].method === 'initialize')
      ? await decideMessage(ctx, session, msgs[0]!)
      : undefined;
  ctx.res.writeHead(202, { 'content-type': 'text/plain' }).end('Accepted');
  if (first) {
    const response = await deliverMessage(first);
    if (response) stream.message(response);
    return;
  }
  for (const msg of msgs) {
    const response =
      isRequest(msg) && msg.method === 'initialize'
        ? await dispatchInitialize(ctx, session, msg)
        : await dispatchMessage(ctx, session, msg);
    if (response) stream.message(response);
  }
}
