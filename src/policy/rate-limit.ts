import type { RateLimitConfig } from '../config/schema.js';
import { globMatcher } from '../shared/glob.js';
import type { PolicyInput, Target } from './rules.js';

export interface CompiledRateLimit {
  id: string;
  per: RateLimitConfig['per'];
  capacity: number;
  refillPerSecond: number;
  appliesTo(upstream: string, target: Target | undefined): boolean;
}

export function compileRateLimit(l: RateLimitConfig): CompiledRateLimit {
  const upstreamOk = l.upstreams ? globMatcher(l.upstreams) : () => true;
  const toolOk = l.tools ? globMatcher(l.tools) : undefined;
  return {
    id: l.id,
    per: l.per,
    capacity: l.capacity,
    refillPerSecond: l.refillPerSecond,
    appliesTo(upstream, target) {
      if (!upstreamOk(upstream)) return false;
      return toolOk === undefined || (target?.feature === 'tool' && toolOk(target.name));
    },
  };
}

/** The bucket a call draws from: one per distinct value of the limit's `per` dimensions. */
export function bucketKey(limit: CompiledRateLimit, input: PolicyInput, target: Target | undefined): string {
  const parts = limit.per.map((d) => {
    switch (d) {
      case 'user':
        return `u:${input.user.issuer}\u0000${input.user.sub}`;
      case 'client':
        return `c:${input.client.id}`;
      case 'tool':
        return `t:${target ? `${target.feature}:${target.name}` : input.request.method}`;
      case 'upstream':
        return `s:${input.upstream}`;
    }
  });
  return `${limit.id}\u0001${parts.join('\u0001')}`;
}

export type RateVerdict = { ok: true } | { ok: false; limitId: string; retryAfterMs: number };

/**
 * Where buckets live: this process's memory, or the fleet's Redis
 * (src/state/redis-rate-limiter.ts), where a limit holds for all instances
 * together. The memory one answers synchronously, so the hot path pays no
 * promise for it; a shared one answers with a promise.
 */
export interface RateLimiter {
  take(limits: readonly { limit: CompiledRateLimit; key: string }[], now?: number): RateVerdict | Promise<RateVerdict>;
}

/**
 * Takes one token for an allowed call from every limit that applies to it
 * (the gateway's rate_limit step and the SDK's handlers alike). Synchronous
 * with the memory limiter; a shared limiter answers with a promise, and one
 * that cannot count throws or rejects (the caller refuses the call).
 */
export function takeForCall(
  rateLimits: readonly CompiledRateLimit[],
  limiter: RateLimiter,
  upstream: string,
  input: PolicyInput,
  target: Target | undefined,
): RateVerdict | Promise<RateVerdict> {
  const limits = rateLimits
    .filter((l) => l.appliesTo(upstream, target))
    .map((limit) => ({ limit, key: bucketKey(limit, input, target) }));
  return limiter.take(limits);
}

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * Token buckets in memory. A call draws one token from every bucket that
 * applies, or from none: a refused call does not drain the other limits.
 * The map is bounded; the least recently used bucket goes first, which only
 * ever forgives (a forgotten bucket restarts full).
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxBuckets = 100_000) {}

  take(limits: readonly { limit: CompiledRateLimit; key: string }[], now = Date.now()): RateVerdict {
    if (limits.length === 0) return { ok: true };
    const current = limits.map(({ limit, key }) => {
      const b = this.buckets.get(key);
      const tokens = b
        ? Math.min(limit.capacity, b.tokens + ((now - b.updated) / 1000) * limit.refillPerSecond)
        : limit.capacity;
      return { limit, key, tokens };
    });
    const short = current.filter((c) => c.tokens < 1);
    if (short.length) {
      const worst = short.reduce((a, c) =>
        (1 - c.tokens) / c.limit.refillPerSecond > (1 - a.tokens) / a.limit.refillPerSecond ? c : a,
      );
      return {
        ok: false,
        limitId: worst.limit.id,
        retryAfterMs: Math.ceil(((1 - worst.tokens) / worst.limit.refillPerSecond) * 1000),
      };
    }
    for (const c of current) {
      this.buckets.delete(c.key);
      this.buckets.set(c.key, { tokens: c.tokens - 1, updated: now });
    }
    while (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value!);
    return { ok: true };
  }
}
