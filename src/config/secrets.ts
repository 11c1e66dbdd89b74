import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { BehalfError } from '../errors.js';

/**
 * Resolves `env:NAME` / `file:PATH` references. Errors name the reference,
 * never its value.
 */
export function resolveSecret(ref: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (value === undefined || value === '')
      throw new BehalfError('config_invalid', `secret ${ref}: environment variable ${name} is not set`);
    return value;
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    const full = isAbsolute(path) ? path : resolve(baseDir, path);
    try {
      return readFileSync(full, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new BehalfError('config_invalid', `secret ${ref}: file cannot be read`, {}, { cause: err });
    }
  }
  throw new BehalfError('config_invalid', `not a secret reference: use env:NAME or file:PATH`);
}
