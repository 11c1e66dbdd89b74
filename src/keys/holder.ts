import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import type { ApiKeyEntry } from '../identity/api-keys.js';
import { sameRevocations, withRevocations, type FleetRevocation } from './fleet-revocations.js';
import { keyStorePath, loadKeyRing, type KeyRing } from './ring.js';

export type KeyReloadResult =
  | {
      ok: true;
      ring: KeyRing;
      previous: KeyRing;
      changed: boolean;
      /** The change came from the fleet (a revocation made on another instance), not from this instance's store. */
      fleet?: boolean;
    }
  | { ok: false; problems: string[] };

/**
 * Holds the gateway's keys in force and keeps them in step with the key
 * store file, the way PolicyHolder does for the policy: a reload reads and
 * checks the whole store before one reference is swapped, and a broken
 * store is refused while the previous keys keep serving.
 *
 * Two triggers, so that `behalf keys revoke` takes effect on the very next
 * request rather than "soon": the folder is watched (reload without
 * traffic, for the audit record and warnings), and every use of the ring
 * first compares the store's inode, size and mtime (one stat, about 4 µs)
 * with those last read. The store is replaced by rename, so a reader never
 * sees half a file.
 */
export class KeyStoreHolder {
  /** The keys in force: the store's, with the fleet's revocations applied. */
  private ring: KeyRing;
  /** The store's own, as last read. */
  private loaded: KeyRing;
  private fleetRevoked: ReadonlyMap<string, FleetRevocation> = new Map();
  private readonly path: string | undefined;
  private signature: string;
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: GatewayConfig,
    private readonly baseDir: string,
    private readonly onReload: (r: KeyReloadResult) => void = () => {},
  ) {
    this.path = keyStorePath(config, baseDir);
    this.signature = this.statSignature();
    // Throws on a broken store: the gateway does not start with keys it cannot read.
    this.loaded = loadKeyRing(config, baseDir);
    this.ring = this.loaded;
  }

  /** The keys in force, re-read first if the store file changed. */
  get current(): KeyRing {
    if (this.path && this.statSignature() !== this.signature) this.reload();
    return this.ring;
  }

  /** For the authenticator: every API key, with its validity. */
  readonly apiKeys = (): readonly ApiKeyEntry[] => this.current.apiKeys;

  get storePath(): string | undefined {
    return this.path;
  }

  reload(): KeyReloadResult {
    // Taken before reading: a write racing the read changes it again and triggers another reload.
    this.signature = this.statSignature();
    let result: KeyReloadResult;
    try {
      this.loaded = loadKeyRing(this.config, this.baseDir);
      const previous = this.ring;
      const next = withRevocations(this.loaded, this.fleetRevoked);
      this.ring = next;
      result = { ok: true, ring: next, previous, changed: next.version !== previous.version };
    } catch (err) {
      result = {
        ok: false,
        problems: (err as Error).message
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      };
    }
    this.onReload(result);
    return result;
  }

  /**
   * The fleet's revocations (API keys revoked on any instance, by hash): in
   * force here at once, whatever this instance's own store says. Reported like
   * a reload, once, when they change what is in force.
   */
  applyFleetRevocations(revoked: ReadonlyMap<string, FleetRevocation>): void {
    this.fleetRevoked = revoked;
    const previous = this.ring;
    const next = withRevocations(this.loaded, revoked);
    if (sameRevocations(previous, next)) return;
    this.ring = next;
    this.onReload({ ok: true, ring: next, previous, changed: true, fleet: true });
  }

  /** Watches the store's folder (writers replace the file by rename); bursts settle into one reload. */
  watchFile(settleMs = 50): void {
    if (!this.path) return;
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), (_event, file) => {
        if (file !== null && file !== name) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => {
          if (this.statSignature() !== this.signature) this.reload();
        }, settleMs);
      });
      this.watcher.on('error', () => {});
    } catch {
      // No watch (folder missing, no inotify): the per-use stat still sees every change.
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private statSignature(): string {
    if (!this.path) return 'none';
    const s = statSync(this.path, { bigint: true, throwIfNoEntry: false });
    return s ? `${s.ino}:${s.size}:${s.mtimeNs}` : 'missing';
  }
}
