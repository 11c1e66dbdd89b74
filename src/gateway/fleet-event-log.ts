import { randomBytes } from 'node:crypto';
import type { EventLogMirror } from './event-log.js';
import type { RequestContext } from './context.js';

/** This process's part of every stream key it makes (event-log.ts: why not the instance id). */
const PROCESS_TAG = randomBytes(4).toString('hex');

/**
 * The fleet's copy of a session's event log (state.redis, HTTP upstreams
 * only: a stdio or legacy SSE session is 404 on any other instance, so its
 * events could never be resumed there). An append that fails is logged
 * loudly by SharedRedis and leaves the live stream as it is: only a
 * resumption on another instance can then miss the event, and it is refused
 * (400), never answered with a guess.
 */
export function fleetEventMirror(ctx: RequestContext, sessionId: string): EventLogMirror | undefined {
  const logs = ctx.rt.shared?.events;
  if (!logs || ctx.route.upstream.transport !== 'streamable-http') return undefined;
  return {
    tag: PROCESS_TAG,
    append(entry) {
      logs.append(sessionId, entry).catch(() => {
        // Already logged as SHARED STATE UNAVAILABLE by SharedRedis.run; the client's live stream is unaffected.
      });
    },
    read: () => logs.read(sessionId),
  };
}
