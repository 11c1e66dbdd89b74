import { unlinkSync } from 'node:fs';
import type { AuditEvent, AuditStore } from '../audit/event.js';
import { BehalfError } from '../errors.js';
import { commandKeyEvent, openChangeTrail, recordChanges } from './change-trail.js';
import { isoTime } from './lifecycle.js';
import { discardNewKey, newKey, type NewKey, type NewKeyRequest } from './new-key.js';
import { privateKeyPath, readKeyStore, updateKeyStore, type KeyStoreDoc, type StoredKey } from './store.js';
import type { KeyStoreTarget } from './target.js';

/**
 * The changes `behalf keys` makes to a key store: create, rotate, revoke.
 * Each is checked against the store before anything is written and again
 * under the store's lock, and each is recorded in the audit trail.
 */

export interface ChangeOptions {
  /** The command named in the audit record. */
  command: string;
  /** Told when no audit trail will record the change, before the store changes. */
  unaudited: () => void;
}

export const DEFAULT_OVERLAP_DAYS = 7;

/** A new key in the store; its id and dates are the caller's to choose. */
export async function createKey(target: KeyStoreTarget, k: NewKeyRequest, options: ChangeOptions): Promise<NewKey> {
  if (k.client !== undefined && target.clients && !target.clients.has(k.client))
    throw refuse(`--client: the config declares no client ${k.client}`);
  // Checked again under the lock; early here so that nothing (a private key file) is written for a taken id.
  assertNewId(target, readKeyStore(target.storePath).doc, k.id);
  const made = await newKey(target.storePath, k);
  await changeAndRecord(
    target,
    options,
    made,
    (doc) => {
      assertNewId(target, doc, k.id);
      doc.keys.push(made.record);
    },
    () => [commandKeyEvent('created', made.record, options.command)],
  );
  return made;
}

export interface Rotation {
  id: string;
  /** How long the old key stays valid beside its successor. */
  overlapMs: number;
  /** Asked for once the old key is found: a default id names the old key's client. */
  successorId: (client: string | undefined, now: number) => string;
  /** Counted from the successor's notBefore, which is the moment of the rotation. */
  successorNotAfter: (notBefore: number) => number;
}

/** A successor for a key; the old key stays valid for the overlap, so clients can switch without downtime. */
export async function rotateKey(
  target: KeyStoreTarget,
  r: Rotation,
  options: ChangeOptions,
): Promise<{ retired: StoredKey; successor: NewKey }> {
  const current = readKeyStore(target.storePath).doc;
  const old = findStored(target, current, r.id, 'rotate');
  const now = Date.now();
  const client = old.kind === 'api-key' ? old.client : undefined;
  const newId = r.successorId(client, now);
  assertNewId(target, current, newId);
  const made = await newKey(target.storePath, {
    kind: old.kind,
    client,
    id: newId,
    now,
    notBefore: now,
    notAfter: r.successorNotAfter(now),
    replaces: old.id,
  });
  let retired!: StoredKey;
  await changeAndRecord(
    target,
    options,
    made,
    (doc) => {
      assertNewId(target, doc, newId);
      // Read again under the lock: the key may have changed since.
      retired = findStored(target, doc, old.id, 'rotate');
      if (retired.status === 'revoked') throw refuse(`key ${retired.id} is revoked: create a new key instead`);
      if (retired.replacedBy)
        throw refuse(`key ${retired.id} was already rotated (replaced by ${retired.replacedBy}): rotate that one`);
      if (Date.parse(retired.notBefore) >= now) throw refuse(`key ${retired.id} is not valid yet: revoke it instead`);
      // Both keys are valid during the overlap; the old one expires at its end (or keeps an earlier expiry).
      retired.notAfter = isoTime(
        Math.min(Date.parse(retired.notAfter), Math.max(now + r.overlapMs, Date.parse(retired.notBefore) + 1)),
      );
      retired.replacedBy = newId;
      doc.keys.push(made.record);
    },
    () => [
      commandKeyEvent('rotated', retired, options.command),
      commandKeyEvent('created', made.record, options.command),
    ],
  );
  return { retired, successor: made };
}

export async function revokeKey(
  target: KeyStoreTarget,
  id: string,
  reason: string | undefined,
  options: ChangeOptions,
): Promise<{ revoked: StoredKey; privateKeyDeleted?: string }> {
  findStored(target, readKeyStore(target.storePath).doc, id, 'revoke');
  let revoked!: StoredKey;
  await changeAndRecord(
    target,
    options,
    undefined,
    (doc) => {
      revoked = findStored(target, doc, id, 'revoke');
      if (revoked.status === 'revoked') throw refuse(`key ${revoked.id} is already revoked (${revoked.revokedAt})`);
      revoked.status = 'revoked';
      revoked.revokedAt = isoTime(Date.now());
      if (reason) revoked.revokedReason = reason.slice(0, 500);
    },
    () => [commandKeyEvent('revoked', revoked, options.command, reason)],
  );
  if (revoked.kind !== 'signing') return { revoked };
  // A revoked signing key never signs again: its private half has no further use.
  try {
    unlinkSync(privateKeyPath(target.storePath, revoked.privateKey));
    return { revoked, privateKeyDeleted: revoked.privateKey };
  } catch {
    return { revoked }; // already gone
  }
}

/**
 * Applies a change under the store lock, then records it. A new key's private
 * file is removed again if the store was not written, so no file outlives a
 * refused change.
 */
async function changeAndRecord(
  target: KeyStoreTarget,
  options: ChangeOptions,
  made: NewKey | undefined,
  change: (doc: KeyStoreDoc) => void,
  events: () => AuditEvent[],
): Promise<void> {
  let trail: AuditStore | undefined;
  try {
    trail = await openTrail(target, options);
  } catch (err) {
    // Nothing was changed: a private key file already written for this change must not stay behind and block its id.
    if (made) discardNewKey(made);
    throw err;
  }
  try {
    try {
      await updateKeyStore(target.storePath, change);
    } catch (err) {
      if (made) discardNewKey(made);
      throw err;
    }
    await recordChanges(trail, events());
  } finally {
    await trail?.close();
  }
}

async function openTrail(target: KeyStoreTarget, options: ChangeOptions): Promise<AuditStore | undefined> {
  if (target.auditPath || target.auditPostgres) return openChangeTrail(target);
  options.unaudited();
  return undefined;
}

function findStored(target: KeyStoreTarget, doc: KeyStoreDoc, id: string, verb: 'rotate' | 'revoke'): StoredKey {
  const k = doc.keys.find((x) => x.id === id);
  if (k) return k;
  if (target.configKeys.some((c) => c.id === id)) {
    throw refuse(
      `key ${id} is written in the gateway config (static form), not in the key store: ${verb === 'revoke' ? 'remove it from clients[].apiKeys' : 'create a new key, then give the old one notAfter in the config'}`,
    );
  }
  throw refuse(`no key ${id} in ${target.storePath}`);
}

function assertNewId(target: KeyStoreTarget, doc: KeyStoreDoc, id: string): void {
  if (doc.keys.some((k) => k.id === id) || target.configKeys.some((k) => k.id === id))
    throw refuse(`a key with id ${id} already exists`);
}

/** A refusal about the keys themselves (no such key, already revoked…), not about how the command was called. */
function refuse(problem: string): BehalfError {
  return new BehalfError('key_change_refused', problem);
}
