import { readFileSync } from 'node:fs';

/** The package's own version, for the evidence pack (read once from package.json next to dist/). */
export const BEHALF_VERSION: string = (() => {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0';
})();
