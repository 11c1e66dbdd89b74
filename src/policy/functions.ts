import type { Environment } from '@marcbachmann/cel-js';
import { pathWithin } from './path-within.js';

/**
 * Functions policy expressions may call beyond standard CEL. Registered on
 * the environment the rules are compiled in, so expressions using them are
 * type-checked at load like any other.
 *
 * - `path_within(path, base) -> bool`: `path` is an absolute path that lies
 *   inside `base` lexically and after resolving symlinks (see pathWithin).
 *   False on any doubt or error; a non-string argument fails evaluation,
 *   which the decision also treats as a deny.
 */
export function registerPolicyFunctions(env: Environment): Environment {
  env.registerFunction(
    'path_within(string, string): bool',
    (path: unknown, base: unknown) => typeof path === 'string' && typeof base === 'string' && pathWithin(path, base),
    {
      description: 'True only if path is absolute and lies inside base, lexically and after resolving symlinks',
    },
  );
  return env;
}
