import type { ApiKeyEntry } from '../identity/api-keys.js';
import type { KeyRing } from './ring.js';

/**
 * An API key revocation made on one gateway instance, as the fleet shares it
 * (src/state/fleet-changes.ts). Identified by the key's hash — what every
 * instance's store holds for it — so it revokes exactly that key wherever it
 * is configured, never another key that happens to share an id.
 */
export interface FleetRevocation {
  /** sha256:<hex>, the key store's form. */
  hash: string;
  id: string;
  /** Epoch ms. */
  revokedAt: number;
  /** The instance that announced it. */
  from: string;
}

export function entryHash(e: ApiKeyEntry): string {
  return `sha256:${e.digest.toString('hex')}`;
}

/** The API keys a ring refuses as revoked, by hash. */
export function revokedHashes(ring: KeyRing): Set<string> {
  return new Set(ring.apiKeys.filter((e) => e.revoked).map(entryHash));
}

/** `ring` with every key the fleet revoked marked revoked, in its entries and its lifecycles (for reports). */
export function withRevocations(ring: KeyRing, revoked: ReadonlyMap<string, FleetRevocation>): KeyRing {
  if (revoked.size === 0) return ring;
  const at = new Map<string, number>();
  const apiKeys = ring.apiKeys.map((e) => {
    const r = e.revoked ? undefined : revoked.get(entryHash(e));
    if (!r) return e;
    at.set(e.keyId, r.revokedAt);
    return { ...e, revoked: true };
  });
  if (at.size === 0) return ring;
  const lifecycles = ring.lifecycles.map((l) =>
    l.kind === 'api-key' && at.has(l.id) && l.status !== 'revoked'
      ? { ...l, status: 'revoked' as const, revokedAt: at.get(l.id) }
      : l,
  );
  return { ...ring, apiKeys, lifecycles };
}

export function sameRevocations(a: KeyRing, b: KeyRing): boolean {
  const x = revokedHashes(a);
  const y = revokedHashes(b);
  return x.size === y.size && [...x].every((h) => y.has(h));
}
