import { SqliteAuditStore } from '../../src/audit/sqlite-store.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { keyChangeEvent } from '../../src/keys/key-event.js';
import { DAY_MS, isoTime } from '../../src/keys/lifecycle.js';
import { updateKeyStore, type StoredApiKey } from '../../src/keys/store.js';

export const AGENT_KEY_ID = 'quickstart-agent';
export const REVOKED_AGENT_KEY_ID = 'quickstart-agent-revoked';

/**
 * The demo agent's API keys, kept in the key store the way `behalf keys`
 * keeps them (only hashes, with dates, so their age can be judged): the live
 * key, and a second one revoked at once, so that a review can show the
 * gateway refuses a revoked key (BND-02) with a real revoked entry rather than
 * a made-up string. Both changes go to the audit trail as `behalf keys
 * create|revoke` record them. Written afresh at every start, before the
 * gateway opens the store and the trail.
 */
export async function writeAgentApiKeys(
  storePath: string,
  auditPath: string,
  clientId: string,
  validDays: number,
): Promise<{ apiKey: string; revokedApiKey: string }> {
  const now = Date.now();
  const make = (id: string, secret: string): StoredApiKey => ({
    id,
    kind: 'api-key',
    client: clientId,
    hash: hashApiKey(secret),
    status: 'active',
    createdAt: isoTime(now),
    notBefore: isoTime(now),
    notAfter: isoTime(now + validDays * DAY_MS),
  });
  const apiKey = generateApiKey();
  const revokedApiKey = generateApiKey();
  const live = make(AGENT_KEY_ID, apiKey);
  const created = make(REVOKED_AGENT_KEY_ID, revokedApiKey);
  const revoked: StoredApiKey = {
    ...created,
    status: 'revoked',
    revokedAt: isoTime(now),
    revokedReason: 'quickstart: a revoked key, so a review can check that it is refused',
  };
  await updateKeyStore(storePath, (doc) => {
    doc.keys = doc.keys.filter((k) => k.id !== AGENT_KEY_ID && k.id !== REVOKED_AGENT_KEY_ID);
    doc.keys.push(live, revoked);
  });
  const audit = new SqliteAuditStore(auditPath);
  try {
    const by = 'behalf quickstart';
    for (const e of [
      keyChangeEvent('created', live, by, undefined, now),
      keyChangeEvent('created', created, by, undefined, now),
      keyChangeEvent('revoked', revoked, by, revoked.revokedReason, now),
    ])
      await audit.append(e);
  } finally {
    await audit.close();
  }
  return { apiKey, revokedApiKey };
}
