import type { GatewaySession } from './session.js';

/**
 * A stream outlives no token: it is closed when the token of the principal
 * that opened it expires (docs/architecture.md §4, legacy HTTP+SSE). Timers are capped
 * because setTimeout overflows past ~24.8 days.
 */
export function closeStreamAtExpiry(session: GatewaySession, onExpire: () => void): void {
  const expiresAt = session.principal.user?.expiresAt;
  if (expiresAt === undefined) return;
  const ms = Math.min(expiresAt * 1000 - Date.now(), 2 ** 31 - 1);
  if (session.streamExpiry) clearTimeout(session.streamExpiry);
  session.streamExpiry = setTimeout(onExpire, Math.max(0, ms));
  session.streamExpiry.unref();
}
