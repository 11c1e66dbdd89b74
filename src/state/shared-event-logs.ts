import type { SharedRedis } from './shared-redis.js';

/**
 * One entry of a session's event log as the fleet keeps it: an event its
 * client was sent (id, stream, data), or the mark that a POST stream's call
 * is over (`end`). `at` is when the instance wrote it.
 */
export interface FleetEvent {
  stream: string;
  at: number;
  id?: string;
  /** The event's data: a JSON-RPC message, or empty for a priming event. */
  data?: string;
  end?: true;
}

export interface EventLogBounds {
  maxEvents: number;
  maxBytes: number;
  /** Idle lifetime: pushed back on every append (the session's idle TTL). */
  ttlMs: number;
}

/**
 * Appends one entry and drops the oldest until the log is within its bounds,
 * counting bytes beside the list, then pushes the expiry of both back: one
 * script, so no reader sees a log over its bounds and concurrent appends of
 * two instances cannot miscount.
 *
 * KEYS: the list, its byte count. ARGV: the entry, max events, max bytes, TTL in ms.
 */
const APPEND = `
redis.call('RPUSH', KEYS[1], ARGV[1])
local bytes = redis.call('INCRBY', KEYS[2], string.len(ARGV[1]))
local n = redis.call('LLEN', KEYS[1])
local maxEvents, maxBytes = tonumber(ARGV[2]), tonumber(ARGV[3])
while n > maxEvents or bytes > maxBytes do
  local dropped = redis.call('LPOP', KEYS[1])
  if not dropped then break end
  bytes = redis.call('DECRBY', KEYS[2], string.len(dropped))
  n = n - 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n
`;

type WithAppend = { behalfAppendEvent(numKeys: number, ...args: (string | number)[]): Promise<number> };

/**
 * Every Streamable HTTP session's event log in the fleet's Redis
 * (docs/architecture.md §11, Resuming a stream on another instance), so any
 * instance can replay what a client missed. Found by a hash of the session id,
 * like the session's record: a log is reached only through its own session,
 * after that session's binding to its principal was checked.
 */
export class SharedEventLogs {
  constructor(
    private readonly redis: SharedRedis,
    readonly bounds: EventLogBounds,
  ) {
    redis.commands.defineCommand('behalfAppendEvent', { lua: APPEND });
  }

  /** The list and its byte count: both go with the session (SharedSessions.delete). */
  keys(sessionId: string): [string, string] {
    return [this.redis.key('events', sessionId), this.redis.key('event-bytes', sessionId)];
  }

  async append(sessionId: string, entry: FleetEvent): Promise<void> {
    const [list, bytes] = this.keys(sessionId);
    const { maxEvents, maxBytes, ttlMs } = this.bounds;
    await this.redis.run('EVALSHA (event log)', (r) =>
      (r as unknown as WithAppend).behalfAppendEvent(2, list, bytes, JSON.stringify(entry), maxEvents, maxBytes, ttlMs),
    );
  }

  /** The session's log, oldest first (at most maxEvents entries). */
  async read(sessionId: string): Promise<FleetEvent[]> {
    const [list] = this.keys(sessionId);
    const raw = await this.redis.run('LRANGE (event log)', (r) => r.lrange(list, 0, -1));
    return raw.map((e) => JSON.parse(e) as FleetEvent);
  }
}
