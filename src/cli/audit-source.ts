import type { AuditStore } from '../audit/event.js';
import { postgresUrl } from '../audit/configured-store.js';
import { resolveAuditPath } from '../audit/path.js';
import { PgAuditStore } from '../audit/pg-store.js';
import { SqliteAuditStore } from '../audit/sqlite-store.js';
import { loadConfigFile } from '../config/load.js';
import { resolveSecret } from '../config/secrets.js';
import { quickstartConfig } from './quickstart-files.js';

/** Where `behalf audit` reads: a config's store, an SQLite file, or a PostgreSQL trail. */
export const SOURCE = {
  config: { type: 'string', short: 'c' },
  db: { type: 'string' },
  postgres: { type: 'string' },
} as const;

export interface SourceFlags {
  config?: string;
  db?: string;
  postgres?: string;
}

/** Opens the store read-only (never creating it), lends it to `use`, and closes it. */
export async function withStore<T>(
  values: SourceFlags,
  usage: (problem: string) => Error,
  use: (store: AuditStore) => Promise<T>,
): Promise<T> {
  const source = sourceOf(values, usage);
  let store: AuditStore;
  if ('postgres' in source) {
    const pgStore = new PgAuditStore(source.postgres, { readonly: true });
    try {
      await pgStore.open();
    } catch (err) {
      await pgStore.close();
      throw err;
    }
    store = pgStore;
  } else {
    store = new SqliteAuditStore(source.db, { readonly: true });
  }
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/** `--postgres env:NAME` or `file:PATH` keeps a password off the command line; a plain URL is taken as it is. */
export function postgresArg(value: string): string {
  return /^(env|file):/.test(value) ? resolveSecret(value, process.cwd()) : value;
}

function sourceOf(values: SourceFlags, usage: (problem: string) => Error): { db: string } | { postgres: string } {
  const given = [values.config, values.db, values.postgres].filter((v) => v !== undefined).length;
  if (given > 1) throw usage('give one of --config, --db or --postgres');
  if (values.db !== undefined) return { db: values.db };
  if (values.postgres !== undefined) return { postgres: postgresArg(values.postgres) };
  const configPath = values.config ?? quickstartConfig('audit');
  if (configPath === undefined) throw usage('--config FILE, --db PATH or --postgres URL is required');
  const { config, baseDir } = loadConfigFile(configPath);
  if (config.audit.postgres) return { postgres: postgresUrl(config.audit, { baseDir }) };
  const path = resolveAuditPath(config.audit.sqlitePath, baseDir);
  if (path === ':memory:') throw usage('this configuration keeps its audit log in memory: there is nothing to read');
  return { db: path };
}
