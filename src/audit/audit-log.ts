import type { Principal } from '../identity/principal.js';
import { BehalfError, describeError } from '../errors.js';
import type { AuditEvent, AuditHealth, AuditQuery, AuditRecord, AuditStore } from './event.js';

/** The same failure is reported at most once per this interval; the next report says how many it stood for. */
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
  private readonly quiet = new Map<string, { until: number; suppressed: number }>();
  private lastFailed = false;

  /** `onError` gets each failure, and how many identical ones were not reported since the last time it was. */
  constructor(
    private readonly store: AuditStore,
    private readonly onError: (err: unknown, suppressed: number) => void = () => {},
  ) {}

  async mustAppend(event: AuditEvent): Promise<AuditRecord> {
    try {
      const rec = await this.track(this.store.append(event));
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
      pending = this.track(this.store.append(event, { deferrable: true }));
    } catch (err) {
      // A store that throws instead of rejecting.
      this.report(err);
      return;
    }
    pending.catch((err: unknown) => this.report(err));
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
    await this.store.close();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = () => {
      this.inFlight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /**
   * Every failure is reported with its cause, but a store that refuses a
   * thousand calls a second is one line a second, not a thousand. The error
   * hook must never turn a handled failure into a crash or an unhandled
   * rejection.
   */
  private report(err: unknown): void {
    this.lastFailed = true;
    try {
      const key = describeError(err);
      const now = Date.now();
      const seen = this.quiet.get(key);
      if (seen && now < seen.until) {
        seen.suppressed++;
        return;
      }
      if (this.quiet.size >= 100) for (const [k, q] of this.quiet) if (now >= q.until) this.quiet.delete(k);
      this.quiet.set(key, { until: now + REPORT_INTERVAL_MS, suppressed: 0 });
      this.onError(err, seen?.suppressed ?? 0);
    } catch {
      // nothing left to tell
    }
  }
}
