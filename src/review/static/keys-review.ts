import { existsSync } from 'node:fs';
import { resolveAuditPath } from '../../audit/path.js';
import { SqliteAuditStore } from '../../audit/sqlite-store.js';
import { describeError } from '../../errors.js';
import { DAY_MS, isoTime, keyState, keyWarnings, type KeyLifecycle } from '../../keys/lifecycle.js';
import type { EvidenceItem } from '../types.js';
import { record, type ConfigReview } from './config-review.js';

/**
 * BND-10's key part: every key still in use within the rotation age
 * (keys.maxAgeDays), and a record of when keys were made and rotated — the
 * key store's dates and links, and `key` events in the audit trail (opened
 * read-only). Ids and dates only, never a key or its hash.
 */
export async function keyEvidence(review: ConfigReview, now = Date.now()): Promise<EvidenceItem[]> {
  const file = review.file;
  const k = review.keys;
  const out: EvidenceItem[] = [];
  if (k.storeError) out.push({ outcome: 'not-assessed', probe: 'key store', detail: `the key store could not be read: ${k.storeError}`, location: { file, path: 'keys.file' } });
  if (k.clientsUnreadable) out.push({ outcome: 'not-assessed', probe: 'API keys in the config', detail: 'clients does not validate, so the config\'s API keys cannot be listed', location: { file, path: 'clients' } });
  if (!k.maxAgeConfigured) out.push({ outcome: 'info', probe: 'rotation age', observed: `keys.maxAgeDays not set: the gateway's default of ${k.maxAgeDays} days applies`, location: { file, path: 'keys.maxAgeDays' } });
  if (!k.lifecycles.length) {
    if (!k.storeError && !k.clientsUnreadable) out.push({ outcome: 'n/a', probe: 'keys within their rotation age', detail: 'the gateway manages no API or signing keys (clients authenticate otherwise)', location: { file } });
    return out;
  }
  for (const key of k.lifecycles) out.push(ageItem(key, k.maxAgeDays, k.warnBeforeDays, file, now));
  out.push(...(await recordItems(review)));
  return out;
}

function ageItem(key: KeyLifecycle, maxAgeDays: number, warnBeforeDays: number, file: string, now: number): EvidenceItem {
  const probe = `age of key ${key.id} (${key.kind === 'signing' ? 'signing key' : `API key of ${key.client ?? '?'}`}, ${key.source === 'config' ? 'gateway config' : 'key store'})`;
  const location = key.source === 'config' ? { file, path: 'clients' } : { file, path: 'keys.file' };
  const expected = `in use no longer than ${maxAgeDays} days`;
  const state = keyState(key, now);
  if (state === 'revoked' || state === 'expired') return { outcome: 'info', probe, observed: `${state}: no longer accepted`, location };
  const max = maxAgeDays * DAY_MS;
  const warnings = keyWarnings(key, { maxAgeDays, warnBeforeDays }, now).map((w) => w.message);
  const detail = warnings.length ? { detail: warnings.join('; ') } : {};
  if (key.createdAt !== undefined) {
    const days = Math.floor((now - key.createdAt) / DAY_MS);
    return now - key.createdAt > max
      ? { outcome: 'bad', probe, expected, observed: `created ${isoTime(key.createdAt)}, ${days} days ago`, ...detail, location }
      : { outcome: 'ok', probe, expected, observed: `created ${isoTime(key.createdAt)}, ${days} days ago`, ...detail, location };
  }
  // Without a creation date, validity bounds still bound the age: a key is not valid before it exists.
  if (key.notBefore !== undefined && now - key.notBefore > max) {
    return { outcome: 'bad', probe, expected, observed: `valid since ${isoTime(key.notBefore)}, more than ${maxAgeDays} days`, location };
  }
  if (key.notAfter !== undefined && key.notAfter - now <= max) {
    return { outcome: 'ok', probe, expected, observed: `no creation date; expires ${isoTime(key.notAfter)}, within ${maxAgeDays} days`, ...detail, location };
  }
  return { outcome: 'not-assessed', probe, expected, observed: 'no createdAt, and no expiry within the rotation age', detail: 'the key\'s age cannot be judged: give it createdAt (or manage it with `behalf keys`, which records it)', location };
}

/** Where the creation and rotation of keys is written down: the key store's dates, dated config keys, the audit trail's key events. */
async function recordItems(review: ConfigReview): Promise<EvidenceItem[]> {
  const file = review.file;
  const keys = review.keys.lifecycles;
  const sources: string[] = [];
  const store = keys.filter((k) => k.source === 'store');
  if (store.length) {
    const rotations = store.filter((k) => k.replaces !== undefined).length;
    sources.push(`the key store records creation dates for ${store.length} key(s)${rotations ? ` and ${rotations} rotation(s)` : ''}`);
  }
  const dated = keys.filter((k) => k.source === 'config' && k.createdAt !== undefined).length;
  if (dated) sources.push(`${dated} config key(s) carry createdAt`);
  const audit = await auditKeyEvents(review);
  const out: EvidenceItem[] = [];
  if (audit.note) out.push({ outcome: 'info', probe: 'key events in the audit trail', detail: audit.note, location: { file, path: 'audit.sqlitePath' } });
  if (audit.counts) {
    const list = Object.entries(audit.counts).map(([o, n]) => `${n} ${o}`).join(', ');
    if (list) sources.push(`the audit trail holds key events (${list})`);
  }
  out.push(sources.length
    ? { outcome: 'ok', probe: 'rotation record', expected: 'a record of when keys were created and rotated', observed: sources.join('; '), location: { file } }
    : { outcome: 'bad', probe: 'rotation record', expected: 'a record of when keys were created and rotated', observed: 'none: the keys carry no dates and the audit trail holds no key events', detail: 'manage keys with `behalf keys` (key store + audit events), or give config keys createdAt', location: { file, path: 'clients' } });
  return out;
}

async function auditKeyEvents(review: ConfigReview): Promise<{ counts?: Record<string, number>; note?: string }> {
  const configured = review.config?.audit.sqlitePath ?? record(review.raw?.audit)?.sqlitePath;
  const path = resolveAuditPath(typeof configured === 'string' ? configured : '.behalf/audit.db', review.baseDir);
  if (path === ':memory:') return { note: 'the audit trail is kept in memory: no key events to read' };
  if (!existsSync(path)) return { note: `no audit trail at ${path}` };
  let store: SqliteAuditStore;
  try {
    store = new SqliteAuditStore(path, { readonly: true });
  } catch (err) {
    return { note: `the audit trail could not be opened read-only: ${(err as Error).message}` };
  }
  try {
    const counts: Record<string, number> = {};
    for (const e of await store.query({ kind: 'key', limit: 10_000 })) counts[e.outcome ?? 'other'] = (counts[e.outcome ?? 'other'] ?? 0) + 1;
    return { counts };
  } catch (err) {
    return { note: `the audit trail could not be read: ${describeError(err)}` };
  } finally {
    await store.close();
  }
}
