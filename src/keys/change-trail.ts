import { hostname, userInfo } from 'node:os';
import type { AuditEvent, AuditStore } from '../audit/event.js';
import { PgAuditStore } from '../audit/pg-store.js';
import { SqliteAuditStore } from '../audit/sqlite-store.js';
import { BehalfError } from '../errors.js';
import { keyChangeEvent } from './key-event.js';
import type { StoredKey } from './store.js';

/**
 * Opened before the change, so an unusable audit trail stops the command
 * before anything changes: the fleet's PostgreSQL trail when the config names
 * one (every instance's key changes in the one history), else the SQLite file.
 */
export async function openChangeTrail(where: { auditPath?: string; auditPostgres?: string }): Promise<AuditStore> {
  if (where.auditPostgres) {
    const store = new PgAuditStore(where.auditPostgres, { log: (line) => process.stderr.write(`${line}\n`) });
    try {
      await store.open();
      return store;
    } catch (err) {
      await store.close();
      throw new BehalfError(
        'store_unavailable',
        `cannot open the audit trail PostgreSQL ${store.where}: nothing was changed`,
        {},
        { cause: err },
      );
    }
  }
  try {
    return new SqliteAuditStore(where.auditPath!);
  } catch (err) {
    throw new BehalfError(
      'store_unavailable',
      `cannot open the audit trail ${where.auditPath}: nothing was changed`,
      {},
      { cause: err },
    );
  }
}

export async function recordChanges(trail: AuditStore | undefined, events: AuditEvent[]): Promise<void> {
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
