import type { Operations } from './operations.js';

/** Of the grace period, this much (at most) is kept for closing sessions, streams and the audit after the wait. */
const CLOSING_SHARE = 0.25;
const CLOSING_MAX_MS = 2000;

export interface DrainResult {
  /** Calls still being answered when the wait ended (0: every call in flight was answered). */
  leftInFlight: number;
  waitedMs: number;
}

/**
 * The first half of a graceful stop: no new call is taken — every request
 * that arrives is answered 503 with `Retry-After` and `connection: close`
 * (server.ts) and /readyz says not ready — and the calls in flight are
 * answered, waited for until none is left or the grace period, less the time
 * kept for closing, runs out. The listener stays open until then, and
 * `close` shuts it: closing it first would reset the connections still in
 * the accept queue and close idle ones whose request is on its way, which
 * their clients see as a failed call rather than a refusal they can retry.
 * Streams are not waited for: a client listens on one for as long as it
 * likes; `close` ends them cleanly.
 */
export async function drain(ops: Operations, graceMs: number): Promise<DrainResult> {
  const started = performance.now();
  ops.draining = true;
  const inFlight = ops.inFlight;
  ops.logger.info({ event: 'shutdown', inFlight, graceMs }, `shutting down: waiting for ${inFlight} calls in flight`);
  const waitMs = Math.max(0, graceMs - Math.min(CLOSING_MAX_MS, graceMs * CLOSING_SHARE));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ops.idle(), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
  clearTimeout(timer);
  const result = { leftInFlight: ops.inFlight, waitedMs: Math.round(performance.now() - started) };
  if (result.leftInFlight)
    ops.logger.warn(
      { event: 'shutdown_grace_over', ...result },
      `grace period over with ${result.leftInFlight} calls still in flight: they are cut off`,
    );
  else ops.logger.info({ event: 'shutdown_drained', ...result }, 'every call in flight was answered');
  return result;
}
