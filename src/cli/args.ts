import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BehalfError } from '../errors.js';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new BehalfError('usage', (err as Error).message, {}, { cause: err });
  }
}
