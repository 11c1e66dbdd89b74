import { Redis, type RedisOptions } from 'ioredis';
import type { RedisStateConfig } from '../config/schema-state.js';
import { BehalfError, describeError } from '../errors.js';
import { intervalLogger, type IntervalLogger } from '../gateway/limits/tally.js';
import { sha256Hex } from '../shared/hash.js';

/** Reconnection: quickly at first, then every second, for as long as it takes (service resumes by itself). */
function retryDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), 1000);
}

/** A redis:// or rediss:// URL, or config_invalid naming the reference — never the URL, which may carry a password. */
export function checkRedisUrl(url: string, ref: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BehalfError('config_invalid', `state.redis.url: ${ref} is not a URL`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw new BehalfError('config_invalid', `state.redis.url: ${ref} must be a redis:// or rediss:// URL`);
}

/**
 * The fleet's Redis: one connection for commands and one for pub/sub (a
 * subscribed connection can do nothing else). Commands are never queued
 * while Redis is away — they fail at once, and so does the request that
 * needed them (state_unavailable, 503) — because a queue would hold requests
 * for an unknown time and then answer them all at once. Failures are logged
 * loudly, once per interval per kind, so an outage cannot go unnoticed and
 * cannot flood the log.
 */
export class SharedRedis {
  readonly commands: Redis;
  readonly subscriber: Redis;
  private readonly logs: IntervalLogger;
  private readonly prefix: string;

  constructor(url: string, cfg: RedisStateConfig, log: (line: string) => void) {
    this.prefix = cfg.keyPrefix;
    this.logs = intervalLogger(log);
    const options: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: cfg.commandTimeoutMs,
      connectTimeout: Math.max(1000, cfg.commandTimeoutMs),
      retryStrategy: retryDelay,
      enableReadyCheck: true,
    };
    this.commands = new Redis(url, { ...options, connectionName: 'behalf' });
    // The subscriber waits for nothing but messages: no command timeout, and SUBSCRIBE is re-sent on reconnect.
    this.subscriber = new Redis(url, {
      ...options,
      commandTimeout: undefined,
      connectionName: 'behalf-changes',
      autoResubscribe: true,
    });
    for (const [name, conn] of [
      ['commands', this.commands],
      ['changes', this.subscriber],
    ] as const) {
      // Without a listener ioredis prints every connection error itself; here they are counted and logged once per interval.
      conn.on('error', (err: unknown) => this.unavailable(`connection (${name})`, err));
    }
  }

  /** A key of this fleet; ids are hashed, so no user, key or token id appears in Redis key names. */
  key(kind: string, id?: string): string {
    return id === undefined ? `${this.prefix}${kind}` : `${this.prefix}${kind}:${sha256Hex(id)}`;
  }

  /** Runs one command (or script); any failure becomes state_unavailable, logged loudly. */
  async run<T>(what: string, f: (r: Redis) => Promise<T>): Promise<T> {
    try {
      return await f(this.commands);
    } catch (err) {
      this.unavailable(what, err);
      throw new BehalfError('state_unavailable', `Redis ${what} failed`, { retryAfter: '1' }, { cause: err });
    }
  }

  /** Resolves once both connections are ready, or after `ms` (a fleet instance may start while Redis is away). */
  async ready(ms: number): Promise<boolean> {
    const one = (r: Redis) =>
      r.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => r.once('ready', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const ok = await Promise.race([Promise.all([one(this.commands), one(this.subscriber)]).then(() => true), timeout]);
    clearTimeout(timer);
    return ok;
  }

  unavailable(what: string, err: unknown): void {
    this.logs.note(
      what,
      `SHARED STATE UNAVAILABLE: Redis ${what}: ${describeError(err).slice(0, 300)}; requests that need it get 503 until Redis answers again`,
    );
  }

  note(key: string, line: string): void {
    this.logs.note(key, line);
  }

  close(): void {
    this.logs.flush();
    this.commands.disconnect();
    this.subscriber.disconnect();
  }

  /** For the log: where the fleet's state is, without credentials. */
  static describe(url: string): string {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  }
}
