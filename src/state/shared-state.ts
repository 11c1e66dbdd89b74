import type { GatewayConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { entryHash, type FleetRevocation } from '../keys/fleet-revocations.js';
import type { KeyRing } from '../keys/ring.js';
import { MemoryRateLimiter, type RateLimiter } from '../policy/rate-limit.js';
import { LOCAL_EXCHANGE_LOCK, RedisExchangeLock, type ExchangeLock } from './exchange-lock.js';
import { FleetChanges, type FleetChangesOptions } from './fleet-changes.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';
import { MemoryReplayCache, RedisReplayCache, type ReplayCache } from './replay-cache.js';
import { checkRedisUrl, SharedRedis } from './shared-redis.js';

/** How long a starting instance waits for Redis before it starts anyway, refusing requests until Redis answers. */
const STARTUP_WAIT_MS = 5000;

/**
 * The single-use state of one gateway — jti replay cache, rate-limit
 * buckets, token-exchange lock — in its own memory (the default, nothing to
 * run) or, with `state.redis`, in the fleet's Redis, where each is one for all
 * instances. Which one is decided here, once, at start.
 */
export interface SharedState {
  instanceId: string;
  replayCache(now?: () => number): ReplayCache;
  rateLimiter: RateLimiter;
  exchangeLock: ExchangeLock;
  redis?: SharedRedis;
  /** Starts listening for the fleet's changes (state.redis only). */
  listen?(o: Omit<FleetChangesOptions, 'instanceId' | 'log'>): FleetChanges;
  close(): void;
}

export async function openSharedState(
  config: GatewayConfig,
  baseDir: string,
  env: NodeJS.ProcessEnv | undefined,
  log: (line: string) => void,
  /** This gateway's name in the fleet (`--instance-id`, else `state.instanceId`, else host and pid). */
  instanceId: string,
): Promise<SharedState> {
  const cfg = config.state.redis;
  if (!cfg) {
    return {
      instanceId,
      replayCache: (now) => new MemoryReplayCache({ now }),
      rateLimiter: new MemoryRateLimiter(),
      exchangeLock: LOCAL_EXCHANGE_LOCK,
      close() {},
    };
  }
  const url = resolveSecret(cfg.url, baseDir, env);
  checkRedisUrl(url, cfg.url);
  const redis = new SharedRedis(url, cfg, log);
  let changes: FleetChanges | undefined;
  const state: SharedState = {
    instanceId,
    replayCache: (now) => new RedisReplayCache(redis, now),
    rateLimiter: new RedisRateLimiter(redis),
    exchangeLock: new RedisExchangeLock(redis),
    redis,
    listen(o) {
      changes = new FleetChanges(redis, { ...o, instanceId, log });
      changes.start();
      return changes;
    },
    close() {
      changes?.close();
      redis.close();
    },
  };
  if (await redis.ready(STARTUP_WAIT_MS))
    log(`shared state: Redis at ${SharedRedis.describe(url)} (prefix ${cfg.keyPrefix}), instance ${instanceId}`);
  else
    log(
      `SHARED STATE UNAVAILABLE: Redis at ${SharedRedis.describe(url)} does not answer; instance ${instanceId} refuses requests (503) until it does`,
    );
  return state;
}

/** The API keys this instance's own store revoked, as the fleet shares them. */
export function storeRevocations(ring: KeyRing, from: string, only?: ReadonlySet<string>): FleetRevocation[] {
  const at = new Map(ring.lifecycles.map((l) => [l.id, l.revokedAt]));
  return ring.apiKeys
    .filter((e) => e.revoked && (!only || only.has(entryHash(e))))
    .map((e) => ({ hash: entryHash(e), id: e.keyId, revokedAt: at.get(e.keyId) ?? Date.now(), from }));
}
