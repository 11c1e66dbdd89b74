import { hostname } from 'node:os';
import type { AuditConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { BehalfError } from '../errors.js';
import type { AuditStore } from './event.js';
import { resolveAuditPath } from './path.js';
import { PgAuditStore } from './pg-store.js';
import { SqliteAuditStore } from './sqlite-store.js';

/** The store a gateway's config names, and how to start it: true when the chain starts with this start. */
export interface ConfiguredStore {
  store: AuditStore;
  start(): Promise<boolean>;
}

export interface StoreContext {
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** audit.postgres (a fleet's trail) when given, else the SQLite file at audit.sqlitePath (the embedded default). */
export function configuredAuditStore(audit: AuditConfig, ctx: StoreContext): ConfiguredStore {
  if (audit.postgres) {
    const store = new PgAuditStore(postgresUrl(audit, ctx), {
      writeBudgetMs: audit.writeBudgetMs,
      maxPendingWrites: audit.maxPendingWrites,
      log: ctx.log,
    });
    return {
      store,
      start: async () => {
        await store.open();
        return store.startsNewChain;
      },
    };
  }
  const sqlite = new SqliteAuditStore(resolveAuditPath(audit.sqlitePath, ctx.baseDir), {
    durability: audit.durability,
    writeBudgetMs: audit.writeBudgetMs,
    maxPendingWrites: audit.maxPendingWrites,
    log: ctx.log,
  });
  return {
    store: sqlite,
    start: async () => {
      await sqlite.startWriter();
      return sqlite.startsNewChain && audit.sqlitePath !== ':memory:';
    },
  };
}

/** The connection URL behind audit.postgres.url, checked to be one (errors name the reference, never the value). */
export function postgresUrl(audit: AuditConfig, ctx: Pick<StoreContext, 'baseDir' | 'env'>): string {
  const ref = audit.postgres!.url;
  const url = resolveSecret(ref, ctx.baseDir, ctx.env);
  if (!/^postgres(ql)?:\/\/./.test(url))
    throw new BehalfError(
      'config_invalid',
      `audit.postgres.url (${ref}) must resolve to a postgres:// or postgresql:// URL`,
    );
  return url;
}

/** Names the gateway in its log and in every audit record it writes: given, or host and pid. */
export function instanceIdOf(given: string | undefined): string {
  if (given === undefined) return `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(given))
    throw new BehalfError('usage', '--instance-id: 1 to 64 letters, digits, . _ : - (starting with a letter or digit)');
  return given;
}
