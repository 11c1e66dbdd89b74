/**
 * The audit writer thread: it owns the store's write connection, so SQLite
 * waiting for a lock, or a slow fsync, blocks this thread and never the
 * gateway's event loop (sqlite-store.ts starts it, writer-thread.ts talks to
 * it, writer-protocol.ts is what they say).
 *
 * Group commit: every batch that arrived while the previous transaction ran
 * is drained from the port and written in one transaction (one fsync with
 * durability full). Before each transaction, and once a second, the file at
 * the path is checked to be the one opened (device and inode); once it is
 * not, nothing more is written. A record whose deadline passed while it
 * waited (for the lock, or behind others) is not written: its caller has
 * already been refused.
 */
import { writeFileSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { ChainWriter } from './chain-writer.js';
import { describeChange, identityOf, openWritable } from './sqlite-file.js';
import {
  isLockError,
  toWire,
  type AppendMessage,
  type FromWriter,
  type ToWriter,
  type WireError,
  type WriterOptions,
  type WriterState,
} from './writer-protocol.js';

const TICK_MS = 1000;
const port = parentPort!;

// Named, so `top -H` and the load bench tell this thread's CPU from V8's helper threads (all "node"); Linux only.
try {
  writeFileSync('/proc/thread-self/comm', 'audit-writer');
} catch {
  // No /proc (not Linux), or no right to rename: the thread keeps its inherited name, nothing else changes.
}
const opts = workerData as WriterOptions;
const post = (m: FromWriter) => port.postMessage(m);

let db: Database.Database;
let writer: ChainWriter;
try {
  db = openWritable(opts.path, { durability: opts.durability, timeoutMs: opts.budgetMs });
  writer = new ChainWriter(db);
} catch (err) {
  post({ t: 'open-failed', error: toWire(err) });
  port.close();
  throw err;
}

let state: WriterState = 'ok';
let moved: string | undefined;
let lastCommit = Date.now();

function setState(next: WriterState, err?: unknown): void {
  if (next === state) return;
  state = next;
  post({ t: 'state', state, ...(err === undefined ? {} : { error: toWire(err) }) });
}

/** False (and reported once) when the path no longer names the file this connection writes to. */
function sameFile(): boolean {
  if (moved) return false;
  let now: string | undefined;
  try {
    now = identityOf(opts.path);
  } catch (err) {
    // A path that cannot even be looked at is not known to be ours: fail closed, with why.
    now = `unreadable (${toWire(err).code ?? toWire(err).message})`;
  }
  if (now === opts.identity) return true;
  moved = describeChange(opts.identity, now);
  post({ t: 'moved', detail: moved, head: writer.last });
  return false;
}

function commit(batches: AppendMessage[]): void {
  if (!sameFile()) {
    const error: WireError = { name: 'AuditFileChanged', message: `audit database ${moved}`, code: 'FILE_CHANGED' };
    for (const b of batches) post({ t: 'failed', id: b.id, error });
    return;
  }
  let taken: AppendMessage[] = [];
  let links;
  try {
    links = writer.write(() => {
      const now = Date.now();
      taken = batches.filter((b) => b.deadline > now);
      return taken.flatMap((b) => b.records);
    });
  } catch (err) {
    const error = toWire(err);
    for (const b of batches) post({ t: 'failed', id: b.id, error });
    setState(isLockError(err) ? 'busy' : 'failing', err);
    return;
  }
  lastCommit = Date.now();
  let at = 0;
  for (const b of batches) {
    if (!taken.includes(b)) post({ t: 'expired', id: b.id });
    else post({ t: 'done', id: b.id, links: links.slice(at, (at += b.records.length)) });
  }
  setState('ok');
}

/** Writes what is queued up to a close, then closes: everything accepted before close() is drained. */
function handle(messages: ToWriter[]): void {
  const at = messages.findIndex((m) => m.t === 'close');
  const batches = (at < 0 ? messages : messages.slice(0, at)) as AppendMessage[];
  if (batches.length) commit(batches);
  if (at < 0) return;
  clearInterval(ticker);
  db.close();
  post({ t: 'closed' });
  port.close();
}

port.on('message', (first: ToWriter) => {
  const messages = [first];
  for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port))
    messages.push(next.message as ToWriter);
  handle(messages);
});

/**
 * Once a second: the file check, and — when nothing was committed lately —
 * a probe of the write lock, so readiness also knows about a lock while no
 * call arrives. The tick itself tells the store this thread is alive.
 */
const ticker = setInterval(() => {
  if (sameFile() && Date.now() - lastCommit >= TICK_MS) {
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      setState('ok');
    } catch (err) {
      setState(isLockError(err) ? 'busy' : 'failing', err);
    }
  }
  post({ t: 'tick' });
}, TICK_MS);

post({ t: 'ready', seq: writer.last.seq });
