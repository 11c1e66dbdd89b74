import type { KeyReloadResult, KeyStoreHolder } from '../keys/holder.js';
import { revokedHashes } from '../keys/fleet-revocations.js';
import type { PolicyHolder } from '../policy/holder.js';
import { storeRevocations, type SharedState } from '../state/shared-state.js';

/** What the gateway sees of the fleet's changes in force (src/state/fleet-changes.ts). */
export interface FleetWiring {
  /** Listening and caught up: a request may be served with the keys and policy in force here. */
  readonly isLive: boolean;
  announce(kind: 'policy', version: string): Promise<void>;
  /** This instance's key store changed: its new revocations and version go to the fleet. */
  announceStore(r: KeyReloadResult & { ok: true }): Promise<void>;
}

/**
 * Connects the fleet's change notes to this gateway's policy and keys: a
 * policy another instance reloaded is reloaded here from this instance's own
 * policy file (the files are the source of truth; a file that gives another
 * version is reported, not overridden); a key store another instance changed
 * is re-read here if it is the same store, and the API keys it revoked are
 * refused here whatever this instance's store says. `fleetOrigin` is set while
 * such a change is put in force, so the reload it causes is recorded as the
 * fleet's and not announced again.
 */
export function listenForFleetChanges(
  shared: SharedState,
  o: { policy: PolicyHolder; keys: KeyStoreHolder; fleetOrigin: { from?: string }; log: (line: string) => void },
): FleetWiring | undefined {
  if (!shared.listen) return undefined;
  const changes = shared.listen({
    apply(c) {
      o.fleetOrigin.from = c.from;
      try {
        if (c.kind === 'keys') {
          // Reading `current` re-reads the store when it changed: instances that share one see the change itself.
          void o.keys.current;
          return;
        }
        if (o.policy.current.version === c.version) return;
        const r = o.policy.reload();
        if (r.ok && r.version !== c.version)
          o.log(
            `WARNING: fleet change: instance ${c.from} has policy ${c.version} in force, this instance's policy file gives ${r.version}: the instances' policy files differ`,
          );
      } finally {
        o.fleetOrigin.from = undefined;
      }
    },
    applyRevocations: (revoked) => o.keys.applyFleetRevocations(revoked),
    ownRevocations: () => storeRevocations(o.keys.current, shared.instanceId),
    localVersion: (kind) => (kind === 'policy' ? o.policy.current.version : o.keys.current.version),
  });
  return {
    get isLive() {
      return changes.isLive;
    },
    announce: (kind, version) => changes.announce(kind, version),
    announceStore(r) {
      const before = revokedHashes(r.previous);
      const added = new Set([...revokedHashes(r.ring)].filter((h) => !before.has(h)));
      return changes.announce('keys', r.ring.version, storeRevocations(r.ring, shared.instanceId, added));
    },
  };
}
