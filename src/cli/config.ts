import { BehalfError } from '../errors.js';
import { loadConfigFile } from '../config/load.js';
import { loadSdkConfigFile } from '../config/load-sdk.js';
import { formatMissing, missingReferences } from '../config/references.js';
import { gatewayJsonSchema } from '../config/schema.js';
import { parse } from './args.js';

export const USAGE = `usage: behalf config check --config FILE [--shape-only] [--sdk]
         validate a configuration, and check that every env:/file: reference resolves here
         (variable set, file readable; values are never read out or printed)
         --shape-only: the file alone, not its references (a config for another machine)
         --sdk: a behalf/sdk config (the boundary inside a server: no upstreams, an \`sdk\` section)
       behalf config schema                print the configuration's JSON Schema
Exit codes: 0 valid; 1 invalid, or a reference cannot be resolved (each named by its field); 2 usage.`;

export function configCommand(argv: string[]): void {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    if (sub === undefined) process.exitCode = 2;
    return;
  }
  if (sub === 'schema') {
    process.stdout.write(`${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
    return;
  }
  if (sub === 'check') {
    const { values } = parse(rest, {
      config: { type: 'string', short: 'c' },
      'shape-only': { type: 'boolean' },
      sdk: { type: 'boolean' },
    });
    if (!values.config) throw new BehalfError('usage', USAGE);
    // --sdk: the format of behalf/sdk, the boundary inside a server (no upstreams, an `sdk` section).
    if (values.sdk) loadSdkConfigFile(values.config);
    else if (values['shape-only']) loadConfigFile(values.config);
    else checkedConfig(values.config);
    process.stdout.write('configuration is valid\n');
    return;
  }
  throw new BehalfError('usage', USAGE);
}

/** Loads and validates the file, then refuses it if any secret reference cannot be resolved here and now. */
export function checkedConfig(path: string): ReturnType<typeof loadConfigFile> {
  const loaded = loadConfigFile(path);
  const missing = missingReferences(loaded.config, loaded.baseDir);
  if (missing.length)
    throw new BehalfError(
      'config_invalid',
      `${path}: ${missing.length} reference(s) cannot be resolved (values are never shown):\n${formatMissing(missing)}`,
    );
  return loaded;
}
