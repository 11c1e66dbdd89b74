import type { CompiledRateLimit, RateLimiter, RateVerdict } from '../policy/rate-limit.js';
import type { SharedRedis } from './shared-redis.js';

/**
 * Every bucket a call draws from, taken in one script so that the whole
 * fleet sees one count: a limit of N per minute is N per minute across all
 * instances. The same rule as the memory limiter — one token from every
 * bucket, or from none — and the clock is Redis's own (TIME), so instances
 * whose clocks disagree still refill a bucket at one rate. Each bucket
 * expires once it would be full again: a forgotten bucket restarts full,
 * which is exactly what it would hold.
 *
 * KEYS: the buckets. ARGV: capacity and refill per second, for each bucket.
 * Returns {1} when taken, {0, index of the bucket that refused, ms until it has a token}.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = {}
local worst, worstWait = 0, -1
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local b = redis.call('HMGET', KEYS[i], 't', 'u')
  local tk = cap
  if b[1] and b[2] then tk = math.min(cap, tonumber(b[1]) + (now - tonumber(b[2])) / 1000 * rate) end
  tokens[i] = tk
  if tk < 1 then
    local wait = (1 - tk) / rate * 1000
    if wait > worstWait then worst, worstWait = i, wait end
  end
end
if worst > 0 then return {0, worst, math.ceil(worstWait)} end
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 't', tostring(tokens[i] - 1), 'u', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(cap / rate * 1000) + 1000)
end
return {1}
`;

/** ioredis runs a defined command with EVALSHA, loading the script once per connection when Redis does not know it. */
type WithTake = { behalfTakeTokens(numKeys: number, ...args: (string | number)[]): Promise<number[]> };

export class RedisRateLimiter implements RateLimiter {
  constructor(private readonly redis: SharedRedis) {
    redis.commands.defineCommand('behalfTakeTokens', { lua: TAKE });
  }

  async take(limits: readonly { limit: CompiledRateLimit; key: string }[]): Promise<RateVerdict> {
    if (limits.length === 0) return { ok: true };
    const keys = limits.map((l) => this.redis.key('rate', l.key));
    const args = limits.flatMap(({ limit }) => [limit.capacity, limit.refillPerSecond]);
    const answer = await this.redis.run('EVALSHA (rate limits)', (r) =>
      (r as unknown as WithTake).behalfTakeTokens(keys.length, ...keys, ...args),
    );
    if (answer[0] === 1) return { ok: true };
    const refused = limits[Number(answer[1]) - 1]!;
    return { ok: false, limitId: refused.limit.id, retryAfterMs: Math.max(1, Number(answer[2])) };
  }
}
