import { BehalfError } from '../errors.js';
import { loadConfigFile } from '../config/load.js';
import { gatewayJsonSchema } from '../config/schema.js';
import { parse } from './args.js';

export function configCommand(argv: string[]): void {
  const [sub, ...rest] = argv;
  if (sub === 'schema') {
    process.stdout.write(`${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
    return;
  }
  if (sub === 'check') {
    const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
    if (!values.config) throw new BehalfError('usage', 'usage: behalf config check --config FILE');
    loadConfigFile(values.config);
    process.stdout.write('configuration is valid\n');
    return;
  }
  throw new BehalfError('usage', 'usage: behalf config schema | behalf config check --config FILE');
}
