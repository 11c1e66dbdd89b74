import type { AuditEvent } from '../audit/event.js';
import { describeKey, keyState, keyWarnings, type KeyAgePolicy, type KeyLifecycle } from './lifecycle.js';
import type { KeyRing } from './ring.js';

export type KeyReportTrigger = 'gateway start' | 'key store reloaded' | 'fleet change' | 'periodic check';

/**
 * What the gateway tells the audit trail and its log about its keys: at
 * start, every key in force (active or waiting for its notBefore) with its
 * dates; afterwards — on a reload or the periodic check — every key whose
 * state or warning changed (created, revoked, expired, removed, entering the
 * warning window). Together with the `behalf keys` records this is the
 * rotation record a review asks for. Never a key or hash, only ids and dates.
 */
export class KeyReporter {
  /** id → "state|warning codes" last reported. */
  private readonly seen = new Map<string, string>();

  constructor(
    private readonly policy: KeyAgePolicy,
    private readonly append: (e: AuditEvent) => void,
    private readonly log: (line: string) => void,
  ) {}

  report(ring: KeyRing, trigger: KeyReportTrigger, now = Date.now()): void {
    const current = new Set<string>();
    for (const k of ring.lifecycles) {
      current.add(k.id);
      const state = keyState(k, now);
      const warnings = keyWarnings(k, this.policy, now);
      const mark = `${state}|${warnings.map((w) => w.code).join(',')}`;
      const before = this.seen.get(k.id);
      this.seen.set(k.id, mark);
      if (before === mark) continue;
      // At start, history (revoked, expired) is not news; from then on every change is.
      if (before === undefined && trigger === 'gateway start' && (state === 'revoked' || state === 'expired')) continue;
      this.record(
        k,
        state,
        warnings.map((w) => w.message),
        trigger,
        now,
      );
    }
    for (const id of [...this.seen.keys()]) {
      if (current.has(id)) continue;
      this.seen.delete(id);
      this.append({
        ts: now,
        kind: 'key',
        outcome: 'key removed',
        credentialId: id,
        reason: `${trigger}: no longer in the gateway config or key store`,
      });
    }
    if (trigger !== 'periodic check') for (const note of ring.notes) this.log(`WARNING: ${note}`);
  }

  private record(k: KeyLifecycle, state: string, warnings: string[], trigger: KeyReportTrigger, now: number): void {
    const outcome = warnings.length ? 'key warning' : `key ${state}`;
    const reason = [`${trigger}: ${state}`, describeKey(k), ...warnings].join('; ');
    this.append({
      ts: now,
      kind: 'key',
      outcome,
      credentialId: k.id,
      clientId: k.client,
      reason: reason.slice(0, 2000),
    });
    const who = `key ${k.id} (${k.kind === 'signing' ? 'signing key' : `client ${k.client}`})`;
    if (warnings.length)
      this.log(
        `WARNING: ${who} ${warnings.join('; ')}: rotate it (behalf keys rotate --id ${k.id}${k.source === 'config' ? ', or replace it in the config' : ''})`,
      );
    else if (trigger !== 'gateway start' && (state === 'revoked' || state === 'expired'))
      this.log(`${who} is ${state}: refused from now on`);
  }
}
