import type { Principal } from '../identity/principal.js';
import { BehalfError, describeError } from '../errors.js';
import { IntervalTally } from '../shared/interval-tally.js';
import type { AuditEvent, AuditHealth, AuditQuery, AuditRecord, AuditStore } from './event.js';

/** The same failure is reported at most once per this interval; the repeats are reported as a count at its end. */
const REPORT_INTERVAL_MS = 1000;

/** Fills the who-fields of an event from a principal. */
export function principalFields(p: Principal | undefined): Partial<AuditEvent> {
  if (!p) return {};
  return {
    clientId: p.client.id,
    clientMethod: p.client.method,
    credentialId: p.client.credentialId,
    userIssuer: p.user?.issuer,
    userSubject: p.user?.subject,
    tokenFingerprint: p.user?.tokenFingerprint,
  };
}

/**
 * The gateway's one way to write audit records. `mustAppend` is for records
 * that gate a call (fail closed); `tryAppend` for records about refusals that
 * are already being refused, where a write failure must not mask the refusal.
 * Appends still in flight are awaited by `close`, so the last records of a
 * shutdown are not lost with an asynchronous store.
 */
export class AuditLog {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly failures: IntervalTally<unknown>;
  private lastFailed = false;

  /**
   * `onError` gets each failure, and at the end of an interval how many identical ones were not reported one by one;
   * `instanceId`, when given, is stamped on every record (a fleet's instances share one trail).
   */
  constructor(
    private readonly store: AuditStore,
    private readonly onError: (err: unknown, suppressed: number) => void = () => {},
    readonly instanceId?: string,
  ) {
    // The error hook must never turn a handled failure into a crash or an unhandled rejection.
    const tell = (err: unknown, suppressed: number) => {
      try {
        this.onError(err, suppressed);
      } catch {
        // nothing left to tell
      }
    };
    this.failures = new IntervalTally<unknown>({
      intervalMs: REPORT_INTERVAL_MS,
      perKey: 1,
      maxKeys: 100,
      single: (err) => tell(err, 0),
      repeated: (err, count) => tell(err, count),
    });
  }

  async mustAppend(event: AuditEvent): Promise<AuditRecord> {
    try {
      const rec = await this.track(this.store.append(this.stamped(event)));
      this.lastFailed = false;
      return rec;
    } catch (err) {
      this.report(err);
      throw new BehalfError('audit_unavailable', undefined, {}, { cause: err });
    }
  }

  tryAppend(event: AuditEvent): void {
    let pending: Promise<AuditRecord>;
    try {
      pending = this.track(this.store.append(this.stamped(event), { deferrable: true }));
    } catch (err) {
      // A store that throws instead of rejecting.
      this.report(err);
      return;
    }
    pending.catch((err: unknown) => this.report(err));
  }

  /** Appends handed to the store and not yet settled: the audit queue depth metric. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** What /readyz says: the store's own view, or else whether the last gating append failed. */
  health(): AuditHealth {
    return (
      this.store.health?.() ?? (this.lastFailed ? { ready: false, reason: 'audit store failing' } : { ready: true })
    );
  }

  query(filter?: AuditQuery): Promise<AuditRecord[]> {
    return this.store.query(filter);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    this.failures.flush();
    await this.store.close();
  }

  private stamped(event: AuditEvent): AuditEvent {
    return this.instanceId === undefined || event.instanceId !== undefined
      ? event
      : { ...event, instanceId: this.instanceId };
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = () => {
      this.inFlight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** Every failure is reported with its cause, but a store that refuses a thousand calls a second is one line a second, not a thousand. */
  private report(err: unknown): void {
    this.lastFailed = true;
    this.failures.note(describeError(err), err);
  }
}
