import { describeError } from '../errors.js';
import type { SharedRedis } from '../state/shared-redis.js';
import { keyOf, parseRevocation, type Revocation } from './entry.js';

/**
 * A fleet's revocations in Redis (docs/revocation.md, docs/architecture.md
 * §11): each one stored in the hash `<prefix>revocations` (field: its key,
 * value: the JSON entry, which names no secret) and published on
 * `<prefix>revocations`, on the subscriber connection the fleet's changes
 * in force already use. Pub/sub forgets what was sent while an instance was
 * away, so every (re)connection reads the whole hash again — that is also how
 * a new instance learns the revocations made before it started. Expired
 * entries are dropped from the hash by whoever reads them.
 */
export class RedisRevocations {
  private readonly channel: string;
  private readonly hash: string;
  /** Made here while Redis could not take them: shared on the next (re)connection. */
  private readonly pending: Revocation[] = [];

  constructor(
    private readonly redis: SharedRedis,
    private readonly o: { apply(r: Revocation): void; log: (line: string) => void },
  ) {
    this.channel = redis.key('revocations');
    this.hash = redis.key('revocations');
  }

  start(): void {
    const sub = this.redis.subscriber;
    sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const r = parseRevocation(text);
      if (r) this.o.apply(r);
    });
    sub.on('ready', () => void this.resync());
    if (sub.status === 'ready') void this.resync();
  }

  /** Stores and publishes one revocation; one that cannot be shared now is kept and shared on reconnection. */
  async publish(r: Revocation): Promise<void> {
    try {
      await this.send(r);
    } catch (err) {
      // Logged by redis.run; it holds here already and reaches the fleet on the next resync.
      this.o.log(`revocation not yet shared with the fleet (${describeError(err)}); it will be on reconnection`);
      this.pending.push(r);
    }
  }

  private send(r: Revocation): Promise<unknown> {
    const text = JSON.stringify(r);
    return this.redis.run('MULTI (revocation)', (c) =>
      c.multi().hset(this.hash, keyOf(r), text).publish(this.channel, text).exec(),
    );
  }

  private async resync(): Promise<void> {
    try {
      await this.redis.subscriber.subscribe(this.channel);
      while (this.pending.length) {
        await this.send(this.pending[0]!);
        this.pending.shift();
      }
      const all = await this.redis.run('HGETALL (revocations)', (c) => c.hgetall(this.hash));
      const now = Date.now();
      const expired: string[] = [];
      for (const [field, text] of Object.entries(all)) {
        const r = parseRevocation(text);
        if (!r || r.expiresAt <= now) expired.push(field);
        else this.o.apply(r);
      }
      if (expired.length) await this.redis.run('HDEL (expired revocations)', (c) => c.hdel(this.hash, ...expired));
    } catch (err) {
      this.redis.unavailable('resync (revocations)', err);
    }
  }
}
