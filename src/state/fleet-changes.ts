import { describeError } from '../errors.js';
import type { FleetRevocation } from '../keys/fleet-revocations.js';
import type { SharedRedis } from './shared-redis.js';

/** A change one instance made that every instance must put in force: its own policy or key store reloaded. */
export interface FleetChange {
  kind: 'policy' | 'keys';
  /** The announcing instance. */
  from: string;
  /** The content hash it now has in force. */
  version: string;
}

export interface FleetChangesOptions {
  instanceId: string;
  log: (line: string) => void;
  /** Puts another instance's change in force here (reload the policy; re-read the key store). */
  apply(change: FleetChange): void;
  /** Every API key revocation the fleet knows, by hash. */
  applyRevocations(revoked: ReadonlyMap<string, FleetRevocation>): void;
  /** This instance's own revocations: shared again on every (re)connection, so none made during an outage is lost. */
  ownRevocations(): FleetRevocation[];
  /** The version this instance has in force. */
  localVersion(kind: FleetChange['kind']): string;
}

const KINDS = new Set(['policy', 'keys']);

function parseChange(text: string): FleetChange | undefined {
  if (text.length > 1000) return undefined;
  try {
    const c = JSON.parse(text) as Partial<FleetChange>;
    if (typeof c.kind === 'string' && KINDS.has(c.kind) && typeof c.from === 'string' && typeof c.version === 'string')
      return { kind: c.kind, from: c.from.slice(0, 100), version: c.version.slice(0, 100) };
  } catch {
    // Not ours (someone else publishing on the channel): ignored below.
  }
  return undefined;
}

function parseRevocations(all: Record<string, string>): Map<string, FleetRevocation> {
  const out = new Map<string, FleetRevocation>();
  for (const [hash, text] of Object.entries(all)) {
    try {
      const r = JSON.parse(text) as Partial<FleetRevocation>;
      if (typeof r.id === 'string' && typeof r.revokedAt === 'number' && typeof r.from === 'string')
        out.set(hash, { hash, id: r.id, revokedAt: r.revokedAt, from: r.from });
    } catch {
      // A field that is not JSON cannot name a key; the hash alone still revokes it.
      out.set(hash, { hash, id: 'unknown', revokedAt: Date.now(), from: 'unknown' });
    }
  }
  return out;
}

/**
 * Changes in force, fleet-wide, through Redis: the instance that made a
 * change records it in Redis (revoked key hashes in one hash, the latest
 * policy and key-store versions in another) and publishes a note on one
 * channel; every other instance hears the note within milliseconds and puts
 * the change in force from its own files and the revocation list.
 *
 * Pub/sub delivers only to those listening, so a note missed while
 * disconnected is made up from the stored state on every (re)connection,
 * before this instance counts as live again. While it is not live, it cannot
 * know whether a key was revoked elsewhere, so the gateway refuses requests
 * (state_unavailable) rather than serve them with possibly stale keys.
 */
export class FleetChanges {
  private live = false;
  private generation = 0;
  private retry?: NodeJS.Timeout;
  /** Announcements that did not reach Redis: made again on the next resync. */
  private readonly pending = new Map<FleetChange['kind'], string>();
  private readonly channel: string;

  constructor(
    private readonly redis: SharedRedis,
    private readonly o: FleetChangesOptions,
  ) {
    this.channel = redis.key('changes');
  }

  get isLive(): boolean {
    return this.live;
  }

  start(): void {
    const sub = this.redis.subscriber;
    sub.on('message', (channel: string, text: string) => {
      if (channel === this.channel) void this.onMessage(text);
    });
    sub.on('ready', () => void this.resync());
    sub.on('close', () => this.down('connection to Redis lost'));
    if (sub.status === 'ready') void this.resync();
  }

  /** Shares a change made here; a failure is logged and the change shared again on the next resync. */
  async announce(kind: FleetChange['kind'], version: string, revoked: FleetRevocation[] = []): Promise<void> {
    this.pending.set(kind, version);
    try {
      await this.send(kind, version, revoked);
      this.pending.delete(kind);
    } catch {
      // Logged by redis.run; until it is shared, this instance refuses requests (down) and resyncs when it can.
      this.down('a change made here could not be shared');
      this.scheduleResync();
    }
  }

  close(): void {
    clearTimeout(this.retry);
    this.live = false;
  }

  private async send(kind: FleetChange['kind'], version: string, revoked: FleetRevocation[]): Promise<void> {
    const note = JSON.stringify({ kind, from: this.o.instanceId, version } satisfies FleetChange);
    await this.redis.run('MULTI (announce change)', (r) => {
      const m = r.multi();
      for (const rev of revoked) m.hset(this.redis.key('revoked-keys'), rev.hash, JSON.stringify(rev));
      m.hset(this.redis.key('versions'), kind, note);
      m.publish(this.channel, note);
      return m.exec();
    });
  }

  private async onMessage(text: string): Promise<void> {
    const change = parseChange(text);
    if (!change || change.from === this.o.instanceId) return;
    try {
      if (change.kind === 'keys') await this.pullRevocations();
      this.o.apply(change);
    } catch (err) {
      this.o.log(`fleet change from ${change.from} could not be applied: ${describeError(err)}`);
      this.down('a fleet change could not be applied');
      this.scheduleResync();
    }
  }

  private async pullRevocations(): Promise<void> {
    const all = await this.redis.run('HGETALL (revoked keys)', (r) => r.hgetall(this.redis.key('revoked-keys')));
    this.o.applyRevocations(parseRevocations(all));
  }

  /** Catches up with everything announced while this instance was not listening, then counts as live. */
  private async resync(): Promise<void> {
    const generation = ++this.generation;
    clearTimeout(this.retry);
    try {
      await this.redis.subscriber.subscribe(this.channel);
      const own = this.o.ownRevocations();
      if (own.length)
        await this.redis.run('HSETNX (own revoked keys)', (r) => {
          const m = r.multi();
          for (const rev of own) m.hsetnx(this.redis.key('revoked-keys'), rev.hash, JSON.stringify(rev));
          return m.exec();
        });
      for (const [kind, version] of [...this.pending]) {
        await this.send(kind, version, []);
        this.pending.delete(kind);
      }
      await this.pullRevocations();
      const versions = await this.redis.run('HGETALL (versions)', (r) => r.hgetall(this.redis.key('versions')));
      for (const text of Object.values(versions)) {
        const c = parseChange(text);
        if (c && c.from !== this.o.instanceId && c.version !== this.o.localVersion(c.kind)) this.o.apply(c);
      }
      if (generation !== this.generation) return;
      if (!this.live) this.o.log(`fleet changes: listening on ${this.channel}, caught up; requests are served`);
      this.live = true;
    } catch (err) {
      this.redis.unavailable('resync (changes in force)', err);
      this.down('could not catch up with the fleet');
      this.scheduleResync();
    }
  }

  private scheduleResync(): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (this.redis.subscriber.status === 'ready') void this.resync();
    }, 1000);
    this.retry.unref();
  }

  private down(why: string): void {
    this.generation++;
    if (this.live)
      this.o.log(
        `SHARED STATE UNAVAILABLE: fleet changes: ${why}; requests get 503 until this instance has caught up with the fleet`,
      );
    this.live = false;
  }
}
