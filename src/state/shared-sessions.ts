import type { GatewayConfig } from '../config/schema.js';
import { SharedEventLogs } from './shared-event-logs.js';
import type { SharedRedis } from './shared-redis.js';

/**
 * What any instance of a fleet needs to serve a Streamable HTTP session
 * another one opened: who it is bound to, where it goes, and the upstream's
 * side of it (docs/architecture.md §11, Sessions). Never the session id
 * itself: the record is found by a hash of it.
 */
export interface SessionRecord {
  /** principalKey of the principal that opened it: checked on every instance, on every request. */
  boundTo: string;
  route: string;
  kind: 'streamable';
  protocolVersion?: string;
  /** The client's initialize params as forwarded, to re-initialize an upstream that forgot the session, as the same user. */
  initializeParams: Record<string, unknown>;
  upstreamSessionId?: string;
  /** The instance whose local child serves it (stdio routes): no other instance can. */
  owner?: string;
  createdAt: number;
}

/** Expiry is refreshed at most this often per session and instance: the record's TTL is minutes, a write per call is waste. */
const REFRESH_EVERY_MS = 5000;

/**
 * The fleet's session records in Redis, with the idle TTL as the Redis TTL.
 * Every read goes to Redis — a session DELETEd on one instance must be dead
 * on the next request on any other — and any failure is state_unavailable
 * (503), never this instance's memory instead.
 */
export class SharedSessions {
  private readonly refreshed = new Map<string, number>();

  constructor(
    private readonly redis: SharedRedis,
    private readonly idleTtlMs: number,
  ) {}

  async put(id: string, record: SessionRecord): Promise<void> {
    const key = this.redis.key('session', id);
    await this.redis.run('SET (session)', (r) => r.set(key, JSON.stringify(record), 'PX', this.idleTtlMs));
    this.refreshed.set(key, Date.now());
  }

  /** Replaces an existing record (never re-creates a deleted one); false when there is none any more. */
  async update(id: string, record: SessionRecord): Promise<boolean> {
    const key = this.redis.key('session', id);
    const set = await this.redis.run('SET XX (session)', (r) =>
      r.set(key, JSON.stringify(record), 'PX', this.idleTtlMs, 'XX'),
    );
    return set === 'OK';
  }

  /** The record, its expiry pushed back when the last push was a while ago; undefined when there is none (or no more). */
  async get(id: string): Promise<SessionRecord | undefined> {
    const key = this.redis.key('session', id);
    const now = Date.now();
    const refresh = now - (this.refreshed.get(key) ?? 0) >= REFRESH_EVERY_MS;
    const raw = await this.redis.run('GET (session)', (r) =>
      refresh ? r.getex(key, 'PX', this.idleTtlMs) : r.get(key),
    );
    if (raw === null) {
      this.refreshed.delete(key);
      return undefined;
    }
    if (refresh) this.remember(key, now);
    return JSON.parse(raw) as SessionRecord;
  }

  /** The record and `also` (the session's event log) in one command: a DELETEd session leaves nothing to replay. */
  async delete(id: string, also: readonly string[] = []): Promise<void> {
    const key = this.redis.key('session', id);
    this.refreshed.delete(key);
    await this.redis.run('DEL (session)', (r) => r.del(key, ...also));
  }

  private remember(key: string, now: number): void {
    // Bounded: entries older than the refresh interval say nothing any more.
    if (this.refreshed.size > 10_000)
      for (const [k, at] of this.refreshed) if (now - at >= REFRESH_EVERY_MS) this.refreshed.delete(k);
    this.refreshed.set(key, now);
  }
}

/** What a fleet instance's sessions share: their records and their event logs, both idle for the sessions' idle TTL. */
export function fleetSessionState(
  redis: SharedRedis,
  sessions: GatewayConfig['sessions'],
  instanceId: string,
): { sessions: SharedSessions; events: SharedEventLogs; instanceId: string } {
  const ttlMs = sessions.idleTtlSeconds * 1000;
  return {
    sessions: new SharedSessions(redis, ttlMs),
    events: new SharedEventLogs(redis, { maxEvents: sessions.resumeEvents, maxBytes: sessions.resumeBytes, ttlMs }),
    instanceId,
  };
}
