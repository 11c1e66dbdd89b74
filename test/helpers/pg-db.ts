/**
 * A database of its own on the machine's PostgreSQL (127.0.0.1:5432, trust
 * auth) for one test file: created with a random name, dropped after. No
 * other database is touched.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { gatewaySetup, THIS_ROOT, type GatewaySetup } from './gateway-process.js';

export const PG_ADMIN_URL = process.env.BEHALF_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDb {
  name: string;
  /** Connection URL of the database. */
  url: string;
  /** The same database through another host:port (a proxy in front of PostgreSQL). */
  urlVia(port: number): string;
  /** One query on a short-lived connection. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

async function admin<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

export async function createTestDb(): Promise<TestDb> {
  const name = `behalf_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const base = new URL(PG_ADMIN_URL);
  const urlVia = (port: number) => {
    const u = new URL(base);
    u.pathname = `/${name}`;
    if (port) {
      u.hostname = '127.0.0.1';
      u.port = String(port);
    }
    return u.toString();
  };
  const url = urlVia(0);
  return {
    name,
    url,
    urlVia,
    async query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query<R>(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    drop: () => admin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

/** A gateway config (helpers/gateway-process.ts) whose audit trail is this PostgreSQL URL, kept in a file beside the config. */
export async function pgGatewaySetup(dir: string, url: string, budgetMs = 200): Promise<GatewaySetup> {
  writeFileSync(join(dir, 'pg-url'), url, { mode: 0o600 });
  return gatewaySetup(THIS_ROOT, dir, {
    sqlitePath: undefined,
    postgres: { url: 'file:pg-url' },
    writeBudgetMs: budgetMs,
  });
}
