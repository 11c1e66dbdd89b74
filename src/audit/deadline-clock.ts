/** Something with a deadline (performance.now() ms) that is `open` until it is dealt with. */
export interface Timed {
  due: number;
  open: boolean;
}

/**
 * One timer for many deadlines that arrive in order (each item is due a
 * fixed budget after it was added): armed for the oldest open item, it
 * expires every item past its deadline and re-arms for the next. Items
 * closed before their deadline just leave at the next sweep, so adding and
 * closing an item never touches a timer.
 */
export class DeadlineClock<T extends Timed> {
  private items: T[] = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly expire: (item: T) => void) {}

  add(item: T): void {
    this.items.push(item);
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
  }

  private arm(): void {
    const first = this.items[0];
    if (this.timer || !first) return;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, first.due - performance.now()));
    // The clock never keeps a process alive: what it times does, while it waits.
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    let i = 0;
    for (; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (!item.open) continue;
      if (item.due > now) break;
      this.expire(item);
    }
    this.items = this.items.slice(i);
    this.arm();
  }
}
