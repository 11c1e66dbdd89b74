import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BehalfError } from '../../src/errors.js';

/** Written first and removed last: while it names a live process, no other quickstart touches the folder. */
export const LOCK_FILE = 'quickstart.lock';

export interface LockBody {
  pid: number;
  startedAt: string;
  gatewayPort?: number;
  idpPort?: number;
  gateway?: string;
}

export interface QuickstartLock {
  /** Records the ports once they are chosen, so a refused second quickstart can name them. */
  update(extra: Partial<LockBody>): void;
  /** Removes the lock, only if it is still this process's (a stale-lock takeover may have replaced it). */
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else; only ESRCH means it is gone.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockBody | undefined {
  try {
    const body = JSON.parse(readFileSync(path, 'utf8')) as LockBody;
    return Number.isInteger(body.pid) && body.pid > 0 ? body : undefined;
  } catch {
    // Unreadable or half-written: the owner died while writing it (it is written in one call), so it is stale.
    return undefined;
  }
}

function refusal(dir: string, owner: LockBody): BehalfError {
  const where = owner.gateway ?? (owner.gatewayPort ? `port ${owner.gatewayPort}` : 'ports not chosen yet');
  return new BehalfError(
    'store_locked',
    `a quickstart is already running from ${dir} (pid ${owner.pid}, gateway ${where}, started ${owner.startedAt}); ` +
      `it keeps serving. To run a second one next to it, give it its own folder: BEHALF_STATE_DIR=${dir}-2 npm start`,
  );
}

/**
 * Takes the state folder for this process: atomically creates the lock file
 * (O_EXCL), or, when one exists, refuses if its pid is alive and takes it
 * over if not. Called before anything in the folder is written.
 */
export function acquireQuickstartLock(dir: string, pid = process.pid): QuickstartLock {
  const path = join(dir, LOCK_FILE);
  let body: LockBody = { pid, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readLock(path);
      if (owner && alive(owner.pid)) throw refusal(dir, owner);
      // Stale (its process is gone): removed, and the exclusive create decides who gets it if two race.
      rmSync(path, { force: true });
      continue;
    }
    writeSync(fd, JSON.stringify(body));
    closeSync(fd);
    return {
      update(extra) {
        body = { ...body, ...extra };
        writeFileSync(path, JSON.stringify(body), { mode: 0o600 });
      },
      release() {
        if (readLock(path)?.pid === pid) rmSync(path, { force: true });
      },
    };
  }
  throw new BehalfError('store_locked', `could not take ${path}: another quickstart keeps taking it`);
}
