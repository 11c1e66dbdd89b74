import type { Principal } from '../identity/principal.js';
import { BehalfError } from '../errors.js';
import type { AuditEvent, AuditQuery, AuditRecord, AuditStore } from './event.js';

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

  constructor(
    private readonly store: AuditStore,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async mustAppend(event: AuditEvent): Promise<AuditRecord> {
    try {
      return await this.track(this.store.append(event));
    } catch (err) {
      this.report(err);
      throw new BehalfError('audit_unavailable', undefined, {}, { cause: err });
    }
  }

  tryAppend(event: AuditEvent): void {
    let pending: Promise<AuditRecord>;
    try {
      pending = this.track(this.store.append(event));
    } catch (err) {
      // A store that throws instead of rejecting.
      this.report(err);
      return;
    }
    pending.catch((err: unknown) => this.report(err));
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

  /** The error hook must never turn a handled failure into a crash or an unhandled rejection. */
  private report(err: unknown): void {
    try {
      this.onError(err);
    } catch {
      // nothing left to tell
    }
  }
}
