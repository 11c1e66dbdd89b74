import type { AuditLog } from '../../audit/audit-log.js';
import type { AuditEvent } from '../../audit/event.js';
import { IntervalTally } from '../../shared/interval-tally.js';

export const AUTH_FAILURE_INTERVAL_MS = 10_000;
/** Identical failures from one source written one by one per interval, and of all sources together. */
const PER_SOURCE = 20;
const TOTAL = 200;

interface Failure {
  event: AuditEvent;
  source: string;
}

/**
 * `auth-failure` records of requests that proved no one. Each would otherwise
 * be an audit write per unauthenticated request, so a flood of them becomes
 * disk writes. Per interval (10 s), the first 20 identical failures (same
 * source address, route, step and reason) from one source, and the first 200
 * of all sources, are written as they happen; the rest are counted, and one
 * record per source and reason says how many more there were. Nothing is
 * dropped unseen, and the writes an anonymous flood causes are bounded.
 */
export class AuthFailureRecorder {
  private readonly tally: IntervalTally<Failure>;

  constructor(audit: AuditLog, intervalMs = AUTH_FAILURE_INTERVAL_MS) {
    const seconds = Math.round(intervalMs / 1000);
    this.tally = new IntervalTally<Failure>({
      intervalMs,
      perKey: PER_SOURCE,
      total: TOTAL,
      maxKeys: 1000,
      single: (f) => audit.tryAppend(f.event),
      repeated: (f, count, overflow) =>
        audit.tryAppend(
          overflow
            ? {
                ts: Date.now(),
                kind: 'auth-failure',
                reason: `${count} more authentication failures from many sources in the last ${seconds} s, not recorded one by one`,
              }
            : {
                ...f.event,
                ts: Date.now(),
                reason: `${f.event.reason} (${count} more from ${f.source} in the last ${seconds} s, not recorded one by one)`,
              },
        ),
    });
  }

  record(event: AuditEvent, source: string): void {
    this.tally.note([source, event.route, event.transport, event.refusedBy, event.reason].join('\0'), {
      event,
      source,
    });
  }

  /** Writes what was counted; before the audit log closes. */
  flush(): void {
    this.tally.flush();
  }
}
