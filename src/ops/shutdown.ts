import type { Server } from 'node:http';
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
 * The first half of a graceful stop: no new connections (the listener
 * closes), new requests on open connections are refused with 503 and
 * `connection: close` (server.ts), /readyz says not ready, and the calls in
 * flight are answered — waited for until none is left or the grace period,
 * less the time kept for closing, runs out. Streams are not waited for: a
 * client listens on one for as long as it likes; `close` ends them cleanly.
 */
export async function drain(server: Server, ops: Operations, graceMs: number): Promise<DrainResult> {
  const started = performance.now();
  ops.draining = true;
  server.close();
  server.closeIdleConnections?.();
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
