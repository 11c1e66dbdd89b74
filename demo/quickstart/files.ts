import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { DEMO_USERS } from './users.js';

/**
 * The quickstart's file store: one folder per demo user under `root`, served
 * by the unmodified `@modelcontextprotocol/server-filesystem` with `root` as
 * its single allowed directory. The server would let anyone reach every
 * folder; the gateway's policy (filesystemPolicy) confines each user to her own.
 */

/** Creates `<root>/<user>` with a welcome file for each demo user; returns the real path of `root`. */
export function prepareUserFolders(root: string): string {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  for (const u of DEMO_USERS) {
    const folder = join(root, u.name);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const welcome = join(folder, 'welcome.txt');
    // Never clobber what a user wrote in an earlier run ('wx' fails if the file exists).
    try {
      writeFileSync(welcome, `Welcome, ${u.name}. This folder is yours; only you reach it through the gateway.\n`, {
        flag: 'wx',
        mode: 0o600,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  // The real path: policies compare against it, and it is what the server reports.
  return realpathSync.native(root);
}

/** The installed server-filesystem's entry script (its package `bin`), to run with Node. */
export function filesystemServerEntry(): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('@modelcontextprotocol/server-filesystem/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin ?? {})[0];
  if (!bin) throw new Error('@modelcontextprotocol/server-filesystem declares no bin entry');
  return resolve(dirname(manifestPath), bin);
}
