import { BehalfError } from '../errors.js';
import type { Link, Prepared } from './chain-writer.js';

/*
 * The messages between the audit store (main thread) and its writer thread
 * (sqlite-worker.ts). Only plain data crosses: records go prepared (their
 * canonical tail and column values: strings and numbers, cheap to copy and
 * to read), results come back as [seq, prevHash, hash], and errors as their
 * name, message and SQLite code, because an Error loses its `code` (the
 * SQLITE_BUSY or SQLITE_FULL an operator needs) on the way.
 */

export interface WriterOptions {
  path: string;
  durability: 'normal' | 'full';
  /** How long a batch may wait for the write lock, and the lifetime of each record's deadline. */
  budgetMs: number;
  /** `dev:ino` of the file the store opened; the writer refuses to write to anything else. */
  identity: string;
}

/** A batch of records; none is written once `deadline` (epoch ms) has passed: its caller has been refused by then. */
export interface AppendMessage {
  t: 'append';
  id: number;
  deadline: number;
  records: Prepared[];
}

export type ToWriter = AppendMessage | { t: 'close' };

export interface WireError {
  name: string;
  message: string;
  code?: string;
}

/** ok: writable; busy: the write lock could not be had in time; failing: a write failed for another reason (disk full, I/O). */
export type WriterState = 'ok' | 'busy' | 'failing';

export type FromWriter =
  | { t: 'ready'; seq: number }
  | { t: 'open-failed'; error: WireError }
  | { t: 'done'; id: number; links: Link[] }
  | { t: 'failed'; id: number; error: WireError }
  | { t: 'expired'; id: number }
  | { t: 'state'; state: WriterState; error?: WireError }
  | { t: 'moved'; detail: string; head: { seq: number; hash: string } }
  | { t: 'tick' }
  | { t: 'closed' };

export function toWire(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

/** The error again, its code also in the message: a log line says SQLITE_BUSY or SQLITE_FULL whoever formats it. */
export function fromWire(w: WireError): Error {
  const err = new Error(w.code && !w.message.includes(w.code) ? `${w.message} (${w.code})` : w.message);
  err.name = w.name;
  if (w.code) Object.assign(err, { code: w.code });
  return err;
}

/** SQLite's "someone else holds the lock" codes, extended ones included (SQLITE_BUSY_SNAPSHOT …). */
export function isLockError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code);
}

/** The thread's error as the cause, its SQLite code in the message: a log line then says SQLITE_BUSY or SQLITE_FULL. */
export function batchError(w: WireError): BehalfError {
  const cause = fromWire(w);
  return new BehalfError(
    isLockError(cause) ? 'store_locked' : 'store_unavailable',
    `audit batch not written: ${w.code ?? w.name}`,
    {},
    { cause },
  );
}
