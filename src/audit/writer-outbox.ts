/** A deferrable record waits at most this long for a record to travel with. */
export const LINGER_MS = 20;
/**
 * A record something waits on is held behind the batch on its way at most
 * this long; past it, it goes as a second batch, queued at the thread.
 */
export const HOLD_MS = 2;
/** Records something waits on held behind a batch at most; one more goes as a second batch at once. */
export const MAX_HELD = 8;

export interface Queued {
  /** performance.now() when it was appended: its budget runs from here, however long it waited to be sent. */
  at: number;
  /** Nothing waits on it (an outcome, a refusal already answered). */
  deferrable: boolean;
}

/**
 * When queued audit records go to the writer thread, and with what.
 *
 * Records appended while a batch is on its way (the decisions of the calls
 * that arrived meanwhile) wait here and go as the next batch the moment it
 * is answered or refused by its deadline; otherwise the records of one turn
 * of the event loop go together at its end (setImmediate: every request
 * parsed in that turn has reached its decision by then). Held records go
 * anyway after HOLD_MS, and as soon as MAX_HELD of them wait: on a machine
 * with more work than cores an answer can be late (either thread waited for
 * a CPU) and a turn long (a burst of requests), and the thread should be
 * writing meanwhile, then find the rest queued when it is done, rather than
 * make a caller wait for two round trips in a row. Each batch costs a postMessage, a wake-up of the
 * thread, a transaction (file locks, a WAL write, the same-file check) and
 * an answer back: under load that is paid once for many calls rather than
 * once for each, and nothing goes on earlier: every caller still waits for
 * its own record's answer.
 *
 * A deferrable record waits for a record something waits on, or at most
 * LINGER_MS from its append: a call's outcome rides with a later call's
 * decision.
 */
export class Outbox<T extends Queued> {
  private items: T[] = [];
  /** The outbox holds a record something waits on. */
  private urgent = false;
  /** Records something waits on in the outbox. */
  private held = 0;
  private scheduled = false;
  private linger?: NodeJS.Timeout;
  private hold?: NodeJS.Timeout;
  /** Batches sent and not yet answered nor refused. */
  private open = 0;

  /**
   * `send` takes a batch and the time its budget runs from: the append of
   * its oldest record something waits on (else now), so holding records
   * back behind another batch never lengthens what a caller may wait.
   * It returns false when it cannot send yet (the thread is not ready):
   * the records stay, and `flush` is called again when it is.
   */
  constructor(private readonly send: (items: T[], since: number) => boolean) {}

  get length(): number {
    return this.items.length;
  }

  add(item: T): void {
    this.items.push(item);
    if (!item.deferrable) {
      this.urgent = true;
      this.held++;
    }
    this.schedule();
  }

  /** Takes everything queued (to refuse it). */
  takeAll(): T[] {
    const items = this.items;
    this.items = [];
    this.urgent = false;
    this.held = 0;
    return items;
  }

  /** Sends what is queued, unless a batch is on its way; `force` sends anyway (drain, close). */
  flush(force = false): void {
    this.scheduled = false;
    clearTimeout(this.linger);
    this.linger = undefined;
    clearTimeout(this.hold);
    this.hold = undefined;
    if ((this.open > 0 && !force) || !this.items.length) return;
    const items = this.items;
    const now = performance.now();
    const since = items.find((e) => !e.deferrable)?.at ?? now;
    if (!this.send(items, since)) return;
    this.items = [];
    this.urgent = false;
    this.held = 0;
    this.open++;
  }

  /** A batch was answered, or refused by its deadline: what queued up meanwhile goes now (deferrable ones after their linger). */
  settled(): void {
    this.open--;
    if (this.urgent && this.open === 0) this.flush();
    else this.schedule();
  }

  stop(): void {
    clearTimeout(this.linger);
    this.linger = undefined;
    clearTimeout(this.hold);
    this.hold = undefined;
  }

  private schedule(): void {
    if (this.held >= MAX_HELD) return this.flush(true);
    if (this.open > 0) {
      if (this.urgent && !this.hold) this.hold = setTimeout(() => this.flush(true), HOLD_MS);
      return;
    }
    if (this.scheduled || !this.items.length) return;
    if (this.urgent) {
      this.scheduled = true;
      clearTimeout(this.linger);
      this.linger = undefined;
      setImmediate(() => this.flush());
    } else if (!this.linger) {
      const waited = performance.now() - this.items[0]!.at;
      this.linger = setTimeout(() => this.flush(), Math.max(0, LINGER_MS - waited));
    }
  }
}
