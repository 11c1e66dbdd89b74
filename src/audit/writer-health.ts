import { BehalfError, describeError } from '../errors.js';
import type { AuditHealth } from './event.js';
import { fromWire, type WireError, type WriterState } from './writer-protocol.js';

/** The thread reports at least once a second; this long (plus the budget) without a word and it is taken as hung. */
const SILENT_MS = 3_000;

/**
 * What the store knows of its writer thread's health, for /readyz and for
 * the log: the state the thread last reported (with its cause), whether
 * the last batch ran out of its budget, when the thread last said anything,
 * and a permanent stop. Each change of state is logged once, with its
 * cause: the refusals in between are the same story.
 */
export class WriterHealth {
  private trouble?: { state: Exclude<WriterState, 'ok'>; cause?: Error };
  private stopped?: string;
  private lastHeard = Date.now();
  private lastTimeout = 0;
  private lastSuccess = 0;

  constructor(
    private readonly path: string,
    private readonly budgetMs: number,
    private readonly log: (line: string) => void,
  ) {}

  heard(): void {
    this.lastHeard = Date.now();
  }

  /** A commit proves the file writable: readiness need not wait for the thread's own state message. */
  committed(): void {
    this.lastSuccess = Date.now();
    if (this.trouble) this.state('ok');
  }

  state(state: WriterState, error?: WireError): void {
    if (state === 'ok') {
      if (this.trouble) this.log(`audit store ${this.path} is writable again`);
      this.trouble = undefined;
      return;
    }
    const cause = error && fromWire(error);
    this.trouble = { state, cause };
    this.log(
      `audit store ${this.path} ${state === 'busy' ? 'is locked by another connection' : 'cannot be written'} (${cause ? describeError(cause) : 'no cause given'}): calls are refused until it is writable`,
    );
  }

  /** Why a batch the thread did not answer in time is refused: the lock and its SQLite code when the thread reported it. */
  timedOut(): BehalfError {
    this.lastTimeout = Date.now();
    const locked = this.trouble?.state === 'busy';
    return new BehalfError(
      locked ? 'store_locked' : 'store_unavailable',
      `audit write not confirmed within ${this.budgetMs} ms: the writer is ${locked ? 'waiting for the database lock' : 'busy or slow'}`,
      {},
      this.trouble?.cause ? { cause: this.trouble.cause } : undefined,
    );
  }

  /** For good: `reason` is what /readyz says from now on. */
  stop(reason: string): void {
    this.stopped ??= reason;
  }

  report(started: boolean): AuditHealth {
    if (this.stopped) return { ready: false, reason: this.stopped };
    if (!started) return { ready: true };
    if (Date.now() - this.lastHeard > SILENT_MS + this.budgetMs)
      return { ready: false, reason: 'audit store not responding' };
    if (this.trouble)
      return { ready: false, reason: `audit store ${this.trouble.state === 'busy' ? 'locked' : 'failing'}` };
    if (this.lastTimeout > this.lastSuccess) return { ready: false, reason: 'audit store too slow' };
    return { ready: true };
  }
}
