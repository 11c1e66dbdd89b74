import { hostname, userInfo } from 'node:os';
import type { AuditEvent } from '../audit/event.js';
import { SqliteAuditStore } from '../audit/sqlite-store.js';
import { BehalfError } from '../errors.js';
import { keyChangeEvent } from './key-event.js';
import type { StoredKey } from './store.js';

/** Opened before the change, so an unusable audit trail stops the command before anything changes. */
export function openChangeTrail(path: string): SqliteAuditStore {
  try {
    return new SqliteAuditStore(path);
  } catch (err) {
    throw new BehalfError(
      'store_unavailable',
      `cannot open the audit trail ${path}: nothing was changed`,
      {},
      { cause: err },
    );
  }
}

export async function recordChanges(trail: SqliteAuditStore | undefined, events: AuditEvent[]): Promise<void> {
  if (!trail) return;
  try {
    for (const e of events) await trail.append(e);
  } catch (err) {
    throw new BehalfError(
      'store_unavailable',
      'the key store was changed, but its audit record could not be written',
      {},
      { cause: err },
    );
  }
}

/** One audit record per key change, naming the operator and the command. */
export function commandKeyEvent(
  outcome: 'created' | 'rotated' | 'revoked',
  k: StoredKey,
  command: string,
  why?: string,
): AuditEvent {
  return keyChangeEvent(outcome, k, `${operator()} with ${command}`, why);
}

function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers)
  }
  return `${user}@${hostname()}`;
}
