import { randomBytes } from 'node:crypto';
import type { Principal } from '../identity/principal.js';
import { principalKey } from '../identity/principal.js';
import { BehalfError } from '../errors.js';
import { fingerprint } from '../shared/hash.js';

export interface SessionBase {
  id: string;
  /** Safe to log: a hash of the id, never the id itself. */
  fingerprint: string;
  routeName: string;
  /** (client, issuer, subject) of the principal that created the session. */
  boundTo: string;
  principal: Principal;
  createdAt: number;
  lastSeen: number;
  /** This session's own idle limit (a per-user process's), instead of the store's. */
  idleTtlMs?: number;
}

/**
 * Sessions bound to the principal that created them. A lookup with any other
 * principal — or for another route — is answered exactly like an unknown id,
 * so possession of a session id never authenticates and says nothing (docs/architecture.md §9).
 */
export class SessionStore<S extends SessionBase> {
  private readonly sessions = new Map<string, S>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly options: {
      idleTtlMs: number;
      maxSessions: number;
      onExpire: (s: S) => void;
      shortestIdleTtlMs?: number;
    },
  ) {
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.min(60_000, options.idleTtlMs, options.shortestIdleTtlMs ?? Infinity),
    );
    this.sweeper.unref();
  }

  newId(): string {
    return randomBytes(24).toString('base64url');
  }

  add(session: S): void {
    if (this.sessions.size >= this.options.maxSessions)
      throw new BehalfError('upstream_unavailable', 'Too many sessions');
    this.sessions.set(session.id, session);
  }

  /** Returns the session only for its own principal on its own route; `mismatch` tells the caller to record the attempt. */
  lookup(id: string, routeName: string, principal: Principal): { session?: S; mismatch: boolean } {
    const s = this.sessions.get(id);
    if (!s) return { mismatch: false };
    if (s.routeName !== routeName || s.boundTo !== principalKey(principal)) return { mismatch: true };
    s.lastSeen = Date.now();
    s.principal = principal;
    return { session: s, mismatch: false };
  }

  delete(id: string): S | undefined {
    const s = this.sessions.get(id);
    this.sessions.delete(id);
    return s;
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): S[] {
    return [...this.sessions.values()];
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.lastSeen < now - (s.idleTtlMs ?? this.options.idleTtlMs)) {
        // onExpire ends the session (and deletes it); the delete after it makes sure it is gone either way.
        this.options.onExpire(s);
        this.sessions.delete(s.id);
      }
    }
  }
}

export function sessionFingerprint(id: string): string {
  return fingerprint(id);
}
