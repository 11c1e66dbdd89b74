import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteAuditStore } from '../../src/audit/sqlite-store.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { keyChangeEvent } from '../../src/keys/key-event.js';
import { DAY_MS, isoTime } from '../../src/keys/lifecycle.js';
import { updateKeyStore, type StoredApiKey } from '../../src/keys/store.js';
import { ADMIN_FILE, writeAdminLocation } from '../../src/revocation/admin-client.js';

export const ADMIN_CLIENT = 'behalf-admin';
export const ADMIN_KEY_ID = 'quickstart-admin';
const ADMIN_KEY_FILE = 'admin-key';

/**
 * The quickstart's admin credential for `behalf revoke`: an API key of the
 * admin client (never the agent's), kept in the key store like any managed
 * key (hash only, dated, audited), the key itself in `.behalf/admin-key`
 * (0600), so `npx behalf revoke --user alice` run in the quickstart's folder
 * finds it through `.behalf/admin.json`.
 */
export async function writeAdminKey(dir: string, storePath: string, auditPath: string, validDays: number) {
  const now = Date.now();
  const secret = generateApiKey();
  const record: StoredApiKey = {
    id: ADMIN_KEY_ID,
    kind: 'api-key',
    client: ADMIN_CLIENT,
    hash: hashApiKey(secret),
    status: 'active',
    createdAt: isoTime(now),
    notBefore: isoTime(now),
    notAfter: isoTime(now + validDays * DAY_MS),
  };
  await updateKeyStore(storePath, (doc) => {
    doc.keys = doc.keys.filter((k) => k.id !== ADMIN_KEY_ID);
    doc.keys.push(record);
  });
  const audit = new SqliteAuditStore(auditPath);
  try {
    await audit.append(keyChangeEvent('created', record, 'behalf quickstart', undefined, now));
  } finally {
    await audit.close();
  }
  const file = join(dir, ADMIN_KEY_FILE);
  writeFileSync(file, secret, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Once the gateway listens: where its admin endpoint is. */
export function writeAdminFile(dir: string, url: string): void {
  writeAdminLocation(dir, { url, key: `file:${ADMIN_KEY_FILE}` });
}

export function removeAdminFiles(dir: string): void {
  rmSync(join(dir, ADMIN_FILE), { force: true });
  rmSync(join(dir, ADMIN_KEY_FILE), { force: true });
}
