import { postgresUrl } from '../audit/configured-store.js';
import { resolveAuditPath } from '../audit/path.js';
import { loadConfigFile } from '../config/load.js';
import { BehalfError } from '../errors.js';
import type { KeyAgePolicy, KeyLifecycle } from './lifecycle.js';
import { configKeyLifecycles, keyStorePath } from './ring.js';

/** The key store a change or listing works on, with what the gateway config adds to its rules. */
export interface KeyStoreTarget {
  storePath: string;
  policy: KeyAgePolicy;
  /** Where each change is recorded (an SQLite file); without it or auditPostgres the change is recorded in the store only. */
  auditPath?: string;
  /** The fleet's PostgreSQL trail (the config's audit.postgres, resolved): changes are recorded there, not in a local file. */
  auditPostgres?: string;
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
    ...(config.audit.postgres
      ? { auditPostgres: postgresUrl(config.audit, { baseDir, env: process.env }) }
      : // An in-memory trail would vanish with this command.
        config.audit.sqlitePath === ':memory:'
        ? {}
        : { auditPath: resolveAuditPath(config.audit.sqlitePath, baseDir) }),
    policy: config.keys,
    clients: new Set(config.clients.map((c) => c.id)),
    configKeys: configKeyLifecycles(config).map((c) => c.lifecycle),
  };
}
