import { randomBytes } from 'node:crypto';
import type { Principal } from '../identity/principal.js';
import { principalKey } from '../identity/principal.js';
import { fingerprint } from '../shared/hash.js';
import {
  gatewayFullError,
  oldestEvictable,
  ownerOf,
  retryAfterSeconds,
  sessionQuota,
  sessionQuotaError,
  streamQuota,
  streamQuotaError,
  type Owner,
  type QuotaView,
  type SessionLimits,
} from './session-quota.js';

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

/** A place held for one session of an owner while its upstream connects; `add` fills it, `release` gives it back. */
export interface SessionSlot {
  readonly owner: Owner;
  readonly stream: boolean;
  done: boolean;
}

export interface SessionStoreOptions<S> {
  idleTtlMs: number;
  limits: SessionLimits;
  onExpire: (s: S) => void;
  /** Ends a session taken from its owner to make room for her new one; the reason goes on its audit record. */
  onEvict: (s: S, reason: string) => void;
  /** An open stream or a request in flight. */
  inUse: (s: S) => boolean;
  hasStream: (s: S) => boolean;
  /** Told when a session is refused at the gateway-wide cap (the operator should hear of it; the caller throttles). */
  onFull?: () => void;
  shortestIdleTtlMs?: number;
}

/**
 * Sessions bound to the principal that created them. A lookup with any other
 * principal — or for another route — is answered exactly like an unknown id,
 * so possession of a session id never authenticates and says nothing (docs/architecture.md §9).
 *
 * Every session is charged to its owner (session-quota.ts) before its
 * upstream is even started: at her quota a user's own idle sessions are
 * evicted, oldest first, and if none is idle she is refused (429) — nobody
 * else's session is ever taken, so one user cannot lock out another. The
 * gateway-wide cap (503) is the last line, for memory, not for fairness.
 */
export class SessionStore<S extends SessionBase> {
  private readonly sessions = new Map<string, S>();
  private readonly byOwner = new Map<string, Set<S>>();
  /** The owner each session was charged to when added: the key it is uncharged from, whatever happens to it after. */
  private readonly ownerKeys = new WeakMap<S, string>();
  /** Slots reserved while upstreams connect, so concurrent opens cannot overshoot a quota. */
  private readonly pending = new Map<string, { sessions: number; streams: number }>();
  private pendingTotal = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly view: QuotaView<S>;

  constructor(private readonly options: SessionStoreOptions<S>) {
    this.view = { lastSeen: (s) => s.lastSeen, inUse: options.inUse };
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.min(60_000, options.idleTtlMs, options.shortestIdleTtlMs ?? Infinity),
    );
    this.sweeper.unref();
  }

  newId(): string {
    return randomBytes(24).toString('base64url');
  }

  /**
   * Holds a place for one more session of this principal (one that opens a
   * stream at once, for legacy SSE, when `stream`), evicting the owner's own
   * idle sessions if that is what it takes. Throws `session_quota_exceeded` or
   * `stream_quota_exceeded` (429) when she is at her quota with nothing idle,
   * `too_many_sessions` (503) when the gateway is full.
   */
  reserve(principal: Principal, o: { stream?: boolean } = {}): SessionSlot {
    const { limits } = this.options;
    const owner = ownerOf(principal);
    const held = () => this.pending.get(owner.key) ?? { sessions: 0, streams: 0 };
    if (o.stream) this.checkStreams(owner, held().streams);
    const quota = sessionQuota(limits, owner);
    while (this.mine(owner).size + held().sessions >= quota) {
      if (!this.evictOne(owner, `evicted: ${owner.kind} session quota (${quota})`))
        throw sessionQuotaError(owner, quota, retryAfterSeconds(this.mine(owner), this.view, limits, Date.now()));
    }
    // At the gateway-wide cap only her own idle sessions may make room: others' are not hers to give.
    while (this.sessions.size + this.pendingTotal >= limits.maxSessions) {
      if (!this.evictOne(owner, `evicted: gateway session cap (${limits.maxSessions})`)) {
        this.options.onFull?.();
        throw gatewayFullError();
      }
    }
    const h = held();
    this.pending.set(owner.key, { sessions: h.sessions + 1, streams: h.streams + (o.stream ? 1 : 0) });
    this.pendingTotal++;
    return { owner, stream: o.stream ?? false, done: false };
  }

  /** Gives back a place that was not used (the upstream failed to start). */
  release(slot: SessionSlot): void {
    if (slot.done) return;
    slot.done = true;
    const h = this.pending.get(slot.owner.key);
    if (!h) return;
    const next = { sessions: h.sessions - 1, streams: h.streams - (slot.stream ? 1 : 0) };
    if (next.sessions <= 0) this.pending.delete(slot.owner.key);
    else this.pending.set(slot.owner.key, next);
    this.pendingTotal--;
  }

  add(session: S, slot: SessionSlot): void {
    this.release(slot);
    this.sessions.set(session.id, session);
    const key = ownerOf(session.principal).key;
    this.ownerKeys.set(session, key);
    const mine = this.byOwner.get(key) ?? new Set<S>();
    mine.add(session);
    this.byOwner.set(key, mine);
  }

  /** Before a stream opens on an existing session: 429 when the owner already holds her quota of streams. */
  checkStreamQuota(principal: Principal): void {
    const owner = ownerOf(principal);
    this.checkStreams(owner, this.pending.get(owner.key)?.streams ?? 0);
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

  /** The session with this id whoever it is bound to, for bookkeeping only (never to serve a request: that is `lookup`). */
  peek(id: string): S | undefined {
    return this.sessions.get(id);
  }

  delete(id: string): S | undefined {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    this.sessions.delete(id);
    const key = this.ownerKeys.get(s) ?? ownerOf(s.principal).key;
    const mine = this.byOwner.get(key);
    mine?.delete(s);
    if (mine?.size === 0) this.byOwner.delete(key);
    return s;
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): S[] {
    return [...this.sessions.values()];
  }

  /** The sessions charged to this principal's owner (her user, or its client without one). */
  ownedBy(principal: Principal): S[] {
    return [...this.mine(ownerOf(principal))];
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private mine(owner: Owner): ReadonlySet<S> {
    return this.byOwner.get(owner.key) ?? new Set();
  }

  private checkStreams(owner: Owner, pendingStreams: number): void {
    const { limits, hasStream } = this.options;
    const quota = streamQuota(limits, owner);
    let open = pendingStreams;
    for (const s of this.mine(owner)) if (hasStream(s)) open++;
    if (open >= quota) throw streamQuotaError(owner, quota, Math.ceil(limits.evictIdleAfterMs / 1000));
  }

  private evictOne(owner: Owner, reason: string): boolean {
    const victim = oldestEvictable(this.mine(owner), this.view, this.options.limits, Date.now());
    if (!victim) return false;
    // onEvict ends the session (and deletes it); the delete after it makes sure it is gone either way.
    this.options.onEvict(victim, reason);
    this.delete(victim.id);
    return true;
  }

  private sweep(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.lastSeen < now - (s.idleTtlMs ?? this.options.idleTtlMs)) {
        // onExpire ends the session (and deletes it); the delete after it makes sure it is gone either way.
        this.options.onExpire(s);
        this.delete(s.id);
      }
    }
  }
}

export function sessionFingerprint(id: string): string {
  return fingerprint(id);
}
