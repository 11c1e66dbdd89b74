import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BehalfError } from '../errors.js';
import type { SharedRedis } from './shared-redis.js';

/**
 * Keeps two gateway instances from exchanging a token for the same user and
 * tool at the same moment (some IdPs refuse, or revoke, a subject token used
 * twice at once). Within one instance, concurrent first calls already share
 * one exchange (CredentialCache's single flight); this is the same rule for
 * the fleet. The exchanged token itself is never shared: each instance keeps
 * its own, in memory, so no user's token is ever stored in Redis.
 */
export interface ExchangeLock {
  around<T>(key: string, exchange: () => Promise<T>): Promise<T>;
}

/** One instance: CredentialCache's single flight is all there is to do. */
export const LOCAL_EXCHANGE_LOCK: ExchangeLock = { around: (_key, exchange) => exchange() };

/** Deletes the lock only if it is still ours: an expired lock may already be another instance's. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
type WithRelease = { behalfReleaseLock(key: string, token: string): Promise<number> };

export interface RedisExchangeLockOptions {
  /** How long a lock lives if its holder dies: the exchange's own deadline plus a margin. Default 12 s. */
  holdMs?: number;
  /** How long to wait for another instance's exchange before refusing the call. Default holdMs + 1 s. */
  waitMs?: number;
  /** Between tries while another instance holds the lock. Default 50 ms. */
  pollMs?: number;
}

/**
 * A short lock in Redis (`SET key token NX PX holdMs`), released by a
 * compare-and-delete script. Redis unreachable refuses the call
 * (state_unavailable), as every other use of the fleet's state does.
 */
export class RedisExchangeLock implements ExchangeLock {
  private readonly holdMs: number;
  private readonly waitMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly redis: SharedRedis,
    o: RedisExchangeLockOptions = {},
  ) {
    this.holdMs = o.holdMs ?? 12_000;
    this.waitMs = o.waitMs ?? this.holdMs + 1000;
    this.pollMs = o.pollMs ?? 50;
    redis.commands.defineCommand('behalfReleaseLock', { numberOfKeys: 1, lua: RELEASE });
  }

  async around<T>(key: string, exchange: () => Promise<T>): Promise<T> {
    const lockKey = this.redis.key('exchange-lock', key);
    const token = randomUUID();
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const got = await this.redis.run('SET NX (token-exchange lock)', (r) =>
        r.set(lockKey, token, 'PX', this.holdMs, 'NX'),
      );
      if (got === 'OK') break;
      if (Date.now() >= deadline)
        throw new BehalfError(
          'downstream_credential_unavailable',
          'token exchange: another gateway instance has been exchanging for this user and tool for too long',
        );
      await sleep(this.pollMs);
    }
    try {
      return await exchange();
    } finally {
      await this.redis
        .run('release (token-exchange lock)', (r) => (r as unknown as WithRelease).behalfReleaseLock(lockKey, token))
        // Already logged by run; the lock expires by itself after holdMs, and the exchange's own result stands.
        .catch(() => undefined);
    }
  }
}
