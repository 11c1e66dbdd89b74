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
