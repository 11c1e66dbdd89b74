import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/*
 * The audit database as a file: opened for writing with private modes, and
 * identified by device and inode so that a store notices when the file at
 * its path is no longer the one it writes to.
 */

export interface WritableOptions {
  durability?: 'normal' | 'full';
  /** SQLite's busy timeout: how long a statement waits for a lock held by another connection. */
  timeoutMs?: number;
}

/**
 * Opens (creating if need be) a database for writing, in WAL mode. The file
 * is created 0600 before SQLite opens it: it holds the argument-digest key,
 * and SQLite gives its -wal and -shm files the database file's mode.
 */
export function openWritable(path: string, opts: WritableOptions = {}): Database.Database {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(path, 'a', 0o600));
  }
  const db = new Database(path, opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs });
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  return db;
}

/** `dev:ino` of the file at `path`, or undefined when there is none. */
export function identityOf(path: string): string | undefined {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  return st ? `${st.dev}:${st.ino}` : undefined;
}

/** What happened to the file, for the log: moved or deleted (nothing at the path), or replaced (another file there). */
export function describeChange(opened: string, now: string | undefined): string {
  const was = `opened as device:inode ${opened}`;
  return now === undefined
    ? `moved or deleted: no file at the path (${was})`
    : `replaced: another file at the path (${was}, now ${now})`;
}

/** The files of a database that others can read or write (group or other permission bits), with their modes. */
export function exposedFiles(path: string): string[] {
  if (path === ':memory:') return [];
  const out: string[] = [];
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    const st = statSync(f, { throwIfNoEntry: false });
    if (st && st.mode & 0o077) out.push(`${f} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`);
  }
  return out;
}
