/**
 * Counts repeated events and reports them at a bounded rate: per key, the
 * first `perKey` events of an interval one by one, then one report with the
 * count when the interval ends. A flood of identical events (refused
 * connections, failed authentications) costs one counter increment each
 * instead of a log line or an audit write each, and stays visible.
 */
export interface TallyOptions<T> {
  intervalMs: number;
  /** Events of one key reported one by one in an interval; the rest are counted. */
  perKey: number;
  /** Events of all keys together reported one by one in an interval. */
  total?: number;
  /** Keys tracked in an interval; events of further keys share one overflow key. */
  maxKeys?: number;
  single(event: T): void;
  /** At the end of an interval: `count` events like `first` were counted, not reported (`overflow`: of many keys). */
  repeated(first: T, count: number, overflow: boolean): void;
}

const OVERFLOW = '\0overflow';

export class IntervalTally<T> {
  private readonly keys = new Map<string, { first: T; seen: number; counted: number }>();
  private reported = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: TallyOptions<T>) {}

  note(key: string, event: T): void {
    let k = key;
    if (!this.keys.has(k) && this.keys.size >= (this.o.maxKeys ?? 1000)) k = OVERFLOW;
    let entry = this.keys.get(k);
    if (!entry) {
      entry = { first: event, seen: 0, counted: 0 };
      this.keys.set(k, entry);
    }
    entry.seen++;
    this.timer ??= setTimeout(() => this.flush(), this.o.intervalMs).unref();
    if (k !== OVERFLOW && entry.seen <= this.o.perKey && this.reported < (this.o.total ?? Infinity)) {
      this.reported++;
      this.o.single(event);
    } else {
      entry.counted++;
    }
  }

  /** Reports what was counted and starts a new interval. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const entries = [...this.keys];
    this.keys.clear();
    this.reported = 0;
    for (const [k, e] of entries) if (e.counted > 0) this.o.repeated(e.first, e.counted, k === OVERFLOW);
  }
}

export const LOG_INTERVAL_MS = 10_000;

export interface IntervalLogger {
  /** Logs `line` now if it is the first of `key` in this interval; else counts it for the interval's summary. */
  note(key: string, line: string): void;
  flush(): void;
}

/** A log line per kind of event at most once per interval, with a count of the repeats at its end. */
export function intervalLogger(log: (line: string) => void, intervalMs = LOG_INTERVAL_MS): IntervalLogger {
  const seconds = Math.round(intervalMs / 1000);
  const tally = new IntervalTally<string>({
    intervalMs,
    perKey: 1,
    maxKeys: 100,
    single: (line) => log(`${line} (repeats are counted and logged every ${seconds} s)`),
    repeated: (line, count, overflow) =>
      log(
        overflow
          ? `${count} more refusals at resource limits in the last ${seconds} s`
          : `${line}: ${count} more in the last ${seconds} s`,
      ),
  });
  return { note: (key, line) => tally.note(key, line), flush: () => tally.flush() };
}
