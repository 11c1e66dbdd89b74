import { BehalfError } from '../../errors.js';
import { isRequest, type JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext, Step } from '../context.js';
import { dispatchInitialize, initializeToForward } from '../message/initialize.js';
import { deleteSession, publishSession, requireStreamableSession } from '../fleet-sessions.js';
import { decideMessage, deliverMessage } from '../message/pipeline.js';
import { headerValue, sendJson } from '../http-io.js';
import { LazyPostStream } from '../lazy-post-stream.js';
import { STATELESS_VERSION } from '../protocol.js';
import { createSession, endSession, sessionIdHeader } from '../session-binding.js';
import type { GatewaySession } from '../session.js';
import type { Resumption } from '../event-log.js';
import { DEFAULT_RETRY_MS, SseWriter } from '../sse-writer.js';
import { refuseUnsupportedBatch } from '../steps/batches.js';
import { closeStreamAtExpiry } from '../stream-expiry.js';
import { answerStateless } from '../stateless/answer.js';

/** Refusals that mean a shared store is unreachable (Redis, the audit trail), not that this call is wrong. */
const SERVICE_AWAY: ReadonlySet<string> = new Set(['audit_unavailable', 'state_unavailable']);

function wantsEventStream(ctx: RequestContext): boolean {
  return /text\/event-stream/i.test(headerValue(ctx.req, 'accept') ?? '');
}

async function resolveSession(ctx: RequestContext): Promise<GatewaySession> {
  const id = sessionIdHeader(ctx);
  if (id !== undefined) return requireStreamableSession(ctx, id);
  throw new BehalfError('session_required');
}

async function initialize(ctx: RequestContext): Promise<void> {
  const msgs = ctx.messages!;
  if (msgs.length !== 1 || ctx.isBatch)
    throw new BehalfError('invalid_request', 'Invalid JSON-RPC request: initialize must be sent alone');
  if (sessionIdHeader(ctx) !== undefined)
    throw new BehalfError('invalid_request', 'Invalid JSON-RPC request: initialize must not carry a session id');
  const session = await createSession(ctx, 'streamable');
  let response: JsonRpcResponse;
  try {
    response = await dispatchInitialize(ctx, session, msgs[0]!);
  } catch (err) {
    endSession(ctx.rt, session, 'initialize failed');
    throw err;
  }
  if ('error' in response) {
    endSession(ctx.rt, session, 'initialize refused');
    sendJson(ctx.res, 200, response);
    return;
  }
  try {
    const forwarded = initializeToForward(ctx, msgs[0]!);
    await publishSession(ctx, session, ('params' in forwarded ? forwarded.params : undefined) ?? {});
  } catch (err) {
    endSession(ctx.rt, session, 'not recorded in the fleet');
    throw err;
  }
  sendJson(ctx.res, 200, response, { 'mcp-session-id': session.id });
}

/** POST: initialize, or one message / a batch on a bound session (or stateless). */
export const handlePost: Step = {
  name: 'handle_post',
  why: 'last: only a fully authenticated principal reaches session lookup and the upstream',
  async run(ctx) {
    const msgs = ctx.messages!;
    // Checked by check_stateless_request: one message, no session, the 2026-07-28 MUSTs met.
    if (ctx.protocolVersion === STATELESS_VERSION && sessionIdHeader(ctx) === undefined) return answerStateless(ctx);
    if (msgs.some((m) => isRequest(m) && m.method === 'initialize')) return initialize(ctx);
    const session = await resolveSession(ctx);
    ctx.session = session;
    refuseUnsupportedBatch(ctx, session);
    session.inFlight++;
    try {
      await answerPost(ctx, session);
    } finally {
      session.inFlight--;
      session.lastSeen = Date.now();
    }
  },
};

/** One message or a batch on a bound (or stateless) session. */
async function answerPost(ctx: RequestContext, session: GatewaySession): Promise<void> {
  const msgs = ctx.messages!;
  const requests = msgs.filter(isRequest);
  let unavailable: BehalfError | undefined;
  const answer = async (msg: (typeof msgs)[number]) => {
    const m = await decideMessage(ctx, session, msg);
    const response = await deliverMessage(m);
    if (m.refusal && SERVICE_AWAY.has(m.refusal.error.code)) unavailable = m.refusal.error;
    return response;
  };
  if (requests.length === 0) {
    await Promise.all(msgs.map(answer));
    ctx.res.writeHead(202).end();
    return;
  }
  // Upstream messages tied to this call (sampling, elicitation) can reach the client on this response.
  const headers: Record<string, string> = { 'mcp-session-id': session.id };
  const canStream = wantsEventStream(ctx);
  const resumable = canStream && session.events ? { log: session.events, live: session.liveStreams } : undefined;
  const sink = new LazyPostStream(ctx.res, headers, resumable);
  if (canStream) {
    session.postStreams.add(sink);
    ctx.relatedSink = sink;
  }
  try {
    const responses = (await Promise.all(msgs.map(answer))).filter((r): r is JsonRpcResponse => r !== undefined);
    // One call refused because a store the gateway needs is away is answered 503 with Retry-After, not a 200
    // carrying the error: clients and load balancers see the outage. A batch, or a stream already open, keeps it in the body.
    if (unavailable && !ctx.isBatch && !sink.opened)
      throw new BehalfError(unavailable.code, undefined, { retryAfter: '1' }, { cause: unavailable });
    sink.finish(responses, ctx.isBatch ?? false);
  } finally {
    session.postStreams.delete(sink);
    sink.release();
  }
}

/** GET: the session's standalone stream for server-initiated messages. */
export const handleGetStream: Step = {
  name: 'open_stream',
  why: "the stream belongs to the session's principal and ends when that principal's token expires",
  async run(ctx) {
    if (!wantsEventStream(ctx)) throw new BehalfError('not_acceptable', 'Accept must include text/event-stream');
    const session = await requireStreamableSession(ctx, sessionIdHeader(ctx));
    const lastEventId = headerValue(ctx.req, 'last-event-id');
    const resumed = lastEventId === undefined ? undefined : await findResumable(ctx, session, lastEventId);
    if (resumed && !resumed.standalone) return resumePostStream(ctx, session, resumed);
    if (session.stream && !session.stream.isClosed)
      throw new BehalfError('invalid_request', 'A stream is already open for this session');
    ctx.rt.sessions.checkStreamQuota(ctx.principal!);
    const record = session.events && { log: session.events, stream: session.standaloneStream };
    const writer = new SseWriter(ctx.res, { 'mcp-session-id': session.id }, record);
    if (resumed) writer.replay(resumed.events);
    session.stream = writer;
    session.upstream.listen();
    writer.onClose = () => {
      if (session.stream === writer) session.stream = undefined;
      // Idle from now, not from the last POST: a client reconnecting its stream is not evicted in the gap.
      session.lastSeen = Date.now();
    };
    closeStreamAtExpiry(session, () => writer.close());
  },
};

/** A call's stream older than a call can last, plus this margin for instances' clocks, is over. */
const CLOCK_MARGIN_MS = 2000;

/**
 * The events after `Last-Event-ID` in this session's own log (this instance's,
 * else the fleet's); an id it does not hold is refused, not guessed at.
 */
async function findResumable(ctx: RequestContext, session: GatewaySession, lastEventId: string): Promise<Resumption> {
  const callTimeoutMs = ctx.route.upstream.requestTimeoutMs + CLOCK_MARGIN_MS;
  const found = await session.events?.resume(lastEventId, callTimeoutMs);
  if (!found) throw new BehalfError('invalid_request', 'Last-Event-ID names no event this session still holds');
  return found;
}

/**
 * GET with the id of a POST stream's event: replays what the client missed,
 * then carries the rest of that call — or, when another instance runs the
 * call, ends with a retry interval so the client polls again (SSE polling).
 */
function resumePostStream(ctx: RequestContext, session: GatewaySession, resumed: Resumption): void {
  ctx.rt.sessions.checkStreamQuota(ctx.principal!);
  const writer = new SseWriter(
    ctx.res,
    { 'mcp-session-id': session.id },
    { log: session.events!, stream: resumed.stream },
  );
  writer.replay(resumed.events);
  const live = session.liveStreams.get(resumed.stream);
  if (live) live.attach(writer);
  else if (resumed.carriedElsewhere) writer.pause(DEFAULT_RETRY_MS);
  // A call already answered has nothing more to send: its response was in the replay.
  else writer.close();
}

/** DELETE: ends the caller's own session. */
export const handleDelete: Step = {
  name: 'delete_session',
  why: 'only the bound principal may end a session',
  async run(ctx) {
    const session = await requireStreamableSession(ctx, sessionIdHeader(ctx));
    await deleteSession(ctx, session);
    ctx.res.writeHead(200).end();
  },
};
