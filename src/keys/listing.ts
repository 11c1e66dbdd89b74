import { DAY_MS, duration, isoTime, keyState, keyWarnings } from './lifecycle.js';
import { readKeyStore, storedLifecycle } from './store.js';
import type { KeyStoreTarget } from './target.js';

/** Every key a gateway with this store would hold, static config keys first, with its state and warnings now. */
export function listKeys(target: Pick<KeyStoreTarget, 'storePath' | 'policy' | 'configKeys'>) {
  const { doc } = readKeyStore(target.storePath);
  const now = Date.now();
  return [...target.configKeys, ...doc.keys.map(storedLifecycle)].map((k) => {
    const stored = doc.keys.find((s) => s.id === k.id && k.source === 'store');
    return {
      id: k.id,
      kind: k.kind,
      client: k.client,
      source: k.source,
      ...(stored?.kind === 'signing' ? { kid: stored.kid, alg: stored.alg } : {}),
      createdAt: k.createdAt === undefined ? undefined : isoTime(k.createdAt),
      notBefore: k.notBefore === undefined ? undefined : isoTime(k.notBefore),
      notAfter: k.notAfter === undefined ? undefined : isoTime(k.notAfter),
      status: keyState(k, now),
      ageDays: k.createdAt === undefined ? undefined : Math.floor((now - k.createdAt) / DAY_MS),
      age: k.createdAt === undefined ? undefined : duration(now - k.createdAt),
      revokedAt: k.revokedAt === undefined ? undefined : isoTime(k.revokedAt),
      replaces: k.replaces,
      replacedBy: k.replacedBy,
      warnings: keyWarnings(k, target.policy, now).map((w) => w.message),
    };
  });
}
