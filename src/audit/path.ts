import { isAbsolute, resolve } from 'node:path';

/** The audit database path of a config: relative paths are relative to the config file's folder. */
export function resolveAuditPath(path: string, baseDir: string): string {
  if (path === ':memory:' || isAbsolute(path)) return path;
  return resolve(baseDir, path);
}
