import { BehalfError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Principal } from '../identity/principal.js';

/** `sessions.*` of the config, in milliseconds where it is time. */
export interface SessionLimits {
  maxSessions: number;
  maxPerUser: number;
  maxPerClient: number;
  maxStreamsPerUser: number;
  maxStreamsPerClient: number;
  evictIdleAfterMs: number;
}

export function sessionLimits(cfg: GatewayConfig['sessions']): SessionLimits {
  return {
    maxSessions: cfg.maxSessions,
    maxPerUser: cfg.maxPerUser,
    maxPerClient: cfg.maxPerClient,
    maxStreamsPerUser: cfg.maxStreamsPerUser,
    maxStreamsPerClient: cfg.maxStreamsPerClient,
    evictIdleAfterMs: cfg.evictIdleAfterSeconds * 1000,
  };
}

/**
 * Who a session is charged to. A user is (issuer, subject) whichever client
 * she comes through, so a second agent gives her no second quota; a principal
 * without a user is charged to its client, which is then all it is.
 */
export interface Owner {
  key: string;
  kind: 'user' | 'client';
}

export function ownerOf(p: Principal): Owner {
  return p.user
    ? { key: JSON.stringify(['user', p.user.issuer, p.user.subject]), kind: 'user' }
    : { key: JSON.stringify(['client', p.client.id]), kind: 'client' };
}

export function sessionQuota(limits: SessionLimits, owner: Owner): number {
  return owner.kind === 'user' ? limits.maxPerUser : limits.maxPerClient;
}

export function streamQuota(limits: SessionLimits, owner: Owner): number {
  return owner.kind === 'user' ? limits.maxStreamsPerUser : limits.maxStreamsPerClient;
}

/** What a session's use looks like to the quota: when it was last used, and whether it is in use right now. */
export interface QuotaView<S> {
  lastSeen(s: S): number;
  /** An open stream or a request in flight: never idle, however long ago it was last seen. */
  inUse(s: S): boolean;
}

/** Idle: unused for `evictIdleAfterMs` and not in use. Such a session is the one thing a quota may take from its owner. */
export function isEvictable<S>(s: S, view: QuotaView<S>, limits: SessionLimits, now: number): boolean {
  return now - view.lastSeen(s) >= limits.evictIdleAfterMs && !view.inUse(s);
}

/** The owner's least recently used evictable session, or none. */
export function oldestEvictable<S>(
  mine: Iterable<S>,
  view: QuotaView<S>,
  limits: SessionLimits,
  now: number,
): S | undefined {
  let oldest: S | undefined;
  for (const s of mine)
    if (isEvictable(s, view, limits, now) && (!oldest || view.lastSeen(s) < view.lastSeen(oldest))) oldest = s;
  return oldest;
}

/**
 * Seconds until one of the owner's sessions could be evicted: the soonest
 * unused one turning idle; if all are in use, one idle period (she must end
 * one herself, and that is as good a guess as any). At least 1.
 */
export function retryAfterSeconds<S>(
  mine: Iterable<S>,
  view: QuotaView<S>,
  limits: SessionLimits,
  now: number,
): number {
  let soonest = limits.evictIdleAfterMs;
  for (const s of mine)
    if (!view.inUse(s)) soonest = Math.min(soonest, view.lastSeen(s) + limits.evictIdleAfterMs - now);
  return Math.max(1, Math.ceil(soonest / 1000));
}

/** A fixed hint for the gateway-wide cap: slots free up as anyone's sessions end, which nobody can predict. */
export const GLOBAL_RETRY_AFTER_SECONDS = 10;

export function sessionQuotaError(owner: Owner, quota: number, retryAfter: number): BehalfError {
  return new BehalfError(
    'session_quota_exceeded',
    `Session quota exceeded: ${quota} sessions of this ${owner.kind} are open and none is idle; end one (DELETE) or retry after ${retryAfter} s`,
    { retryAfter: String(retryAfter) },
  );
}

export function streamQuotaError(owner: Owner, quota: number, retryAfter: number): BehalfError {
  return new BehalfError(
    'stream_quota_exceeded',
    `Stream quota exceeded: ${quota} streams of this ${owner.kind} are open; close one or retry after ${retryAfter} s`,
    { retryAfter: String(retryAfter) },
  );
}

export function gatewayFullError(): BehalfError {
  return new BehalfError(
    'too_many_sessions',
    `Gateway at its session limit; retry after ${GLOBAL_RETRY_AFTER_SECONDS} s`,
    { retryAfter: String(GLOBAL_RETRY_AFTER_SECONDS) },
  );
}
