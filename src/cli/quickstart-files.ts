import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stateDir } from '../../demo/quickstart/state-files.js';

/**
 * The quickstart's gateway config when a command that needs one is run in
 * the quickstart's folder without naming it (BEHALF_STATE_DIR or ./.behalf):
 * `behalf keys list` and `behalf audit query` then just work. Said on stderr,
 * so a reader of stdout (--json) is not disturbed.
 */
export function quickstartConfig(command: string): string | undefined {
  const path = join(stateDir(), 'gateway.yaml');
  if (!existsSync(path)) return undefined;
  process.stderr.write(`behalf ${command}: using the quickstart's config ${relative(process.cwd(), path) || path}\n`);
  return path;
}
