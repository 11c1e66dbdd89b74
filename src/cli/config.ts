import { BehalfError } from '../errors.js';
import { loadConfigFile } from '../config/load.js';
import { loadSdkConfigFile } from '../config/load-sdk.js';
import { gatewayJsonSchema } from '../config/schema.js';
import { parse } from './args.js';

export function configCommand(argv: string[]): void {
  const [sub, ...rest] = argv;
  if (sub === 'schema') {
    process.stdout.write(`${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
    return;
  }
  if (sub === 'check') {
    const { values } = parse(rest, { config: { type: 'string', short: 'c' }, sdk: { type: 'boolean' } });
    if (!values.config) throw new BehalfError('usage', 'usage: behalf config check --config FILE [--sdk]');
    // --sdk: the format of behalf/sdk, the boundary inside a server (no upstreams, an `sdk` section).
    if (values.sdk) loadSdkConfigFile(values.config);
    else loadConfigFile(values.config);
    process.stdout.write('configuration is valid\n');
    return;
  }
  throw new BehalfError('usage', 'usage: behalf config schema | behalf config check --config FILE [--sdk]');
}
