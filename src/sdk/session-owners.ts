import { principalKey, type Principal } from '../identity/principal.js';

/**
 * Which principal each MCP session of a protected server belongs to
 * (docs/architecture.md §9: a session belongs to (client, issuer, subject)).
 * The SDK's transport makes the session ids; the boundary binds each one to
 * whoever initialized it, and every later request with that id must come
 * from the same principal. Bounded: past `max` the least recently used
 * binding goes, and with it the session is unknown to the boundary (a
 * request for it is refused, never let through unbound).
 */
export class SessionOwners {
  private readonly owners = new Map<string, { key: string; last: number }>();

  constructor(
    private readonly max: number,
    private readonly idleMs: number,
  ) {}

  bind(sessionId: string, p: Principal): void {
    this.owners.delete(sessionId);
    this.owners.set(sessionId, { key: principalKey(p), last: Date.now() });
    if (this.owners.size > this.max) this.owners.delete(this.owners.keys().next().value!);
  }

  /** `unknown` for an id never bound here (or forgotten), `mismatch` for someone else's. */
  check(sessionId: string, p: Principal): 'ok' | 'unknown' | 'mismatch' {
    const o = this.owners.get(sessionId);
    if (!o || Date.now() - o.last > this.idleMs) return 'unknown';
    if (o.key !== principalKey(p)) return 'mismatch';
    this.owners.delete(sessionId);
    this.owners.set(sessionId, { ...o, last: Date.now() });
    return 'ok';
  }

  forget(sessionId: string): void {
    this.owners.delete(sessionId);
  }
}
