import type { AuditEvent } from '../audit/event.js';
import { describeKey } from './lifecycle.js';
import { storedLifecycle, type StoredKey } from './store.js';

/**
 * The audit record of one key change, as `behalf keys` and the quickstart
 * write it: ids, client and dates, who made the change and why — never the
 * key, its hash or a private key.
 */
export function keyChangeEvent(
  outcome: 'created' | 'rotated' | 'revoked',
  k: StoredKey,
  by: string,
  why?: string,
  ts = Date.now(),
): AuditEvent {
  const details = [describeKey(storedLifecycle(k)), ...(why ? [`reason: ${why.slice(0, 200)}`] : []), `by ${by}`];
  return {
    ts,
    kind: 'key',
    outcome,
    credentialId: k.id,
    clientId: k.kind === 'api-key' ? k.client : undefined,
    reason: details.join('; ').slice(0, 2000),
  };
}
