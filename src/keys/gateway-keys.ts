import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { GatewaySigner } from '../delegation/types.js';
import { KeyStoreHolder, type KeyReloadResult } from './holder.js';
import { KeyReporter } from './report.js';
import { KeyStoreSigner } from './signer.js';

/** How often a running gateway re-checks its keys against the clock (expiry, warning windows). */
const PERIODIC_CHECK_MS = 3_600_000;

export interface GatewayKeys {
  holder: KeyStoreHolder;
  /** Present when the config names a key store (signing keys live there). */
  signer?: GatewaySigner;
  /** Records the keys in force, starts watching the store and the periodic check. */
  start(): void;
  close(): void;
}

/**
 * The gateway's credentials: client API keys (config and key store) and its
 * own signing keys. Throws when the key store cannot be read, so the gateway
 * does not start with keys it cannot check.
 */
export function createGatewayKeys(o: {
  config: GatewayConfig;
  baseDir: string;
  baseUrl: string | (() => string);
  audit: AuditLog;
  log: (line: string) => void;
  /** Named on every key record this gateway writes (a fleet records each change once per instance). */
  instanceId?: string;
  /** After this instance's own store changed what is in force: the fleet hears of it (src/state/fleet-changes.ts). */
  onStoreChange?: (r: KeyReloadResult & { ok: true }) => void;
  /** API keys revoked since the last reload (this store's or the fleet's): the streams they hold open end (src/revocation/). */
  onKeysRevoked?: (keyIds: string[]) => void;
}): GatewayKeys {
  const reporter = new KeyReporter(
    o.config.keys,
    (e) => o.audit.tryAppend(o.instanceId ? { ...e, instanceId: o.instanceId } : e),
    o.log,
  );
  const onReload = (r: KeyReloadResult) => {
    if (r.ok) {
      if (r.fleet) o.log('fleet change: a key revoked on another gateway instance is refused here from now on');
      else if (r.changed) o.log(`key store reloaded: version ${r.ring.version}`);
      reporter.report(r.ring, r.fleet ? 'fleet change' : 'key store reloaded');
      if (!r.fleet && r.changed) o.onStoreChange?.(r);
      const before = new Set(r.previous.apiKeys.filter((k) => k.revoked).map((k) => k.keyId));
      const added = r.ring.apiKeys.filter((k) => k.revoked && !before.has(k.keyId)).map((k) => k.keyId);
      if (added.length) o.onKeysRevoked?.(added);
    } else {
      o.log(
        `key store reload rejected; the previous keys stay in force:\n${r.problems.map((p) => `  ${p}`).join('\n')}`,
      );
      o.audit.tryAppend({
        ts: Date.now(),
        kind: 'key',
        outcome: 'key store rejected',
        reason: r.problems.join('; ').slice(0, 2000),
        instanceId: o.instanceId,
      });
    }
  };
  const holder = new KeyStoreHolder(o.config, o.baseDir, onReload);
  const signer = holder.storePath ? new KeyStoreSigner(o.baseUrl, () => holder.current.signing) : undefined;
  let timer: NodeJS.Timeout | undefined;
  return {
    holder,
    signer,
    start() {
      reporter.report(holder.current, 'gateway start');
      if (o.config.keys.watch) holder.watchFile();
      timer = setInterval(() => reporter.report(holder.current, 'periodic check'), PERIODIC_CHECK_MS);
      timer.unref();
    },
    close() {
      clearInterval(timer);
      holder.close();
    },
  };
}
