import type { Principal } from '../identity/principal.js';
import { BehalfError } from '../errors.js';
import type { AuditEvent, AuditStore } from './event.js';

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
 */
export class AuditLog {
  constructor(private readonly store: AuditStore, private readonly onError: (err: unknown) => void = () => {}) {}

  mustAppend(event: AuditEvent): void {
    try {
      this.store.append(event);
    } catch (err) {
      this.onError(err);
      throw new BehalfError('audit_unavailable');
    }
  }

  tryAppend(event: AuditEvent): void {
    try {
      this.store.append(event);
    } catch (err) {
      this.onError(err);
    }
  }

  query(filter?: Parameters<AuditStore['query']>[0]): AuditEvent[] {
    return this.store.query(filter);
  }

  close(): void {
    this.store.close();
  }
}
