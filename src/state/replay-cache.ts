import type { SharedRedis } from './shared-redis.js';

/**
 * Single use of short-lived assertions (`jti`). An id is remembered until the
 * assertion it came from expires — after that the assertion itself is refused
 * as expired, so the id need not be kept. Two implementations: one process's
 * memory, and the fleet's Redis (an id used on one instance is refused on all).
 */
export interface ReplayCache {
  /**
   * Records `key` until `expiresAt` (epoch seconds). Resolves true when the
   * key was new (first use), false when it was already recorded (a replay)
   * or cannot be recorded (full): either way the caller must refuse.
   */
  firstUse(key: string, expiresAt: number): Promise<boolean>;
  close?(): void;
}

export interface MemoryReplayCacheOptions {
  /** Most ids kept at once; when all are unexpired, new ones are refused (fail closed). Default 100 000. */
  maxEntries?: number;
  /** Epoch seconds. */
  now?: () => number;
}

/**
 * One process's memory. Bounded: expired ids are dropped as new ones arrive,
 * and a cache full of unexpired ids refuses rather than forgets — forgetting
 * one would let its assertion be replayed.
 */
export class MemoryReplayCache implements ReplayCache {
  private readonly entries = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(o: MemoryReplayCacheOptions = {}) {
    this.maxEntries = o.maxEntries ?? 100_000;
    this.now = o.now ?? (() => Date.now() / 1000);
  }

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    const now = this.now();
    const seen = this.entries.get(key);
    if (seen !== undefined && seen > now) return false;
    this.pruneOldest(now);
    if (this.entries.size >= this.maxEntries) this.pruneAll(now);
    if (this.entries.size >= this.maxEntries) return false;
    // Re-inserting moves the key to the end, keeping the map roughly in expiry order.
    this.entries.delete(key);
    this.entries.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Cheap, amortised O(1): insertion order is roughly expiry order, since lifetimes are short and similar. */
  private pruneOldest(now: number): void {
    for (const [k, exp] of this.entries) {
      if (exp > now) return;
      this.entries.delete(k);
    }
  }

  /** The full sweep, only when the cache is full. */
  private pruneAll(now: number): void {
    for (const [k, exp] of this.entries) if (exp <= now) this.entries.delete(k);
  }
}

/**
 * The fleet's: one atomic `SET key 1 PX ttl NX` per assertion, so of two
 * instances given the same assertion at the same moment exactly one sees it
 * as new. Redis unreachable rejects with state_unavailable: never a fallback
 * to this instance's memory, which would let the assertion be used once per
 * instance.
 */
export class RedisReplayCache implements ReplayCache {
  private readonly now: () => number;

  constructor(
    private readonly redis: SharedRedis,
    now?: () => number,
  ) {
    this.now = now ?? (() => Date.now() / 1000);
  }

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    // At least a second: an assertion at the edge of its lifetime is still refused on replay.
    const ttlMs = Math.max(1000, Math.ceil((expiresAt - this.now()) * 1000));
    const set = await this.redis.run('SET NX (signed-context jti)', (r) =>
      r.set(this.redis.key('jti', key), '1', 'PX', ttlMs, 'NX'),
    );
    return set === 'OK';
  }
}
