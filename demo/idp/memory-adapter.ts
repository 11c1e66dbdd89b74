import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';

interface Entry {
  model: string;
  payload: AdapterPayload;
  expiresAt: number;
}

const PRUNE_ABOVE = 1000;

/**
 * Per-instance storage for oidc-provider. The library's built-in memory adapter is one module-wide
 * store (a restarted IdP in the same process would see the old one's records) and prints a warning
 * on every start; supplying our own through the documented `adapter` option avoids both.
 * Expiry is checked on read, so there are no timers to keep a test process alive.
 */
export function createMemoryAdapter(): AdapterFactory {
  const store = new Map<string, Entry>();

  const live = (key: string): AdapterPayload | undefined => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };

  const prune = (): void => {
    if (store.size < PRUNE_ABOVE) return;
    const now = Date.now();
    for (const [key, entry] of store) if (entry.expiresAt <= now) store.delete(key);
  };

  const findBy = (model: string, match: (p: AdapterPayload) => boolean): AdapterPayload | undefined => {
    for (const [key, entry] of store) {
      if (entry.model === model && match(entry.payload) && live(key)) return structuredClone(entry.payload);
    }
    return undefined;
  };

  return (model: string): Adapter => {
    const keyOf = (id: string): string => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        prune();
        const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
        store.set(keyOf(id), { model, payload: structuredClone(payload), expiresAt });
      },
      async find(id) {
        const payload = live(keyOf(id));
        return payload && structuredClone(payload);
      },
      async findByUid(uid) {
        return findBy(model, (p) => p.uid === uid);
      },
      async findByUserCode(userCode) {
        return findBy(model, (p) => p.userCode === userCode);
      },
      async consume(id) {
        const payload = live(keyOf(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(keyOf(id));
      },
      async revokeByGrantId(grantId) {
        for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
      },
    };
  };
}
