import { resolveAuditPath } from '../audit/path.js';
import { loadConfigFile } from '../config/load.js';
import { BehalfError } from '../errors.js';
import type { KeyAgePolicy, KeyLifecycle } from './lifecycle.js';
import { configKeyLifecycles, keyStorePath } from './ring.js';

/** The key store a change or listing works on, with what the gateway config adds to its rules. */
export interface KeyStoreTarget {
  storePath: string;
  policy: KeyAgePolicy;
  /** Where each change is recorded; without it the change is recorded in the store only. */
  auditPath?: string;
  /** Clients the config declares: a new API key must be for one of them. */
  clients?: Set<string>;
  /** The config's static keys: their ids are taken, and they cannot be changed in the store. */
  configKeys: KeyLifecycle[];
}

/** The key store a gateway config names, with its age policy, clients, static keys and audit trail. */
export function configKeyStore(configFile: string): KeyStoreTarget {
  const { config, baseDir } = loadConfigFile(configFile);
  const storePath = keyStorePath(config, baseDir);
  if (!storePath) throw new BehalfError('usage', `${configFile} names no key store: add keys: { file: keys.json }`);
  return {
    storePath,
    // An in-memory trail would vanish with this command.
    auditPath: config.audit.sqlitePath === ':memory:' ? undefined : resolveAuditPath(config.audit.sqlitePath, baseDir),
    policy: config.keys,
    clients: new Set(config.clients.map((c) => c.id)),
    configKeys: configKeyLifecycles(config).map((c) => c.lifecycle),
  };
}
