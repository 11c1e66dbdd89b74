import type { AuditLog } from '../audit/audit-log.js';
import type { ReloadResult } from '../policy/holder.js';

/**
 * Every reload attempt is on the record: which policy is in force, or why a
 * file was refused; in a fleet, which instance reloaded and, when another
 * instance's change caused it, which one.
 */
export function recordReload(
  audit: AuditLog,
  log: (line: string) => void,
  r: ReloadResult,
  fleet: { instanceId?: string; from?: string },
): void {
  const via = fleet.from ? `fleet change announced by ${fleet.from}` : undefined;
  if (r.ok) {
    if (r.changed) log(`policy reloaded: version ${r.version}${via ? ` (${via})` : ''}`);
    audit.tryAppend({
      ts: Date.now(),
      kind: 'policy',
      outcome: r.changed ? 'reloaded' : 'reloaded (unchanged)',
      policyVersion: r.version,
      reason: via,
      instanceId: fleet.instanceId,
    });
  } else {
    log(`policy reload rejected; the previous policy stays in force:\n${r.problems.map((p) => `  ${p}`).join('\n')}`);
    audit.tryAppend({
      ts: Date.now(),
      kind: 'policy',
      outcome: 'reload rejected',
      reason: [via, ...r.problems].filter(Boolean).join('; ').slice(0, 2000),
      instanceId: fleet.instanceId,
    });
  }
}
