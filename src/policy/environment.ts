import { Environment } from '@marcbachmann/cel-js';
import { registerPolicyFunctions } from './functions.js';

/**
 * The CEL environment every rule is checked against. Variables are declared
 * with their shapes, so a misspelt field (`user.subb`), a wrong type
 * (`user.sub == 1`) or an unknown variable is a load error with its position,
 * not a silent deny at call time. Claims, annotations and arguments are
 * `map<string, dyn>`: their keys come from the IdP and the upstream, not us.
 */
export const POLICY_VARIABLES = {
  user: { authenticated: 'bool', issuer: 'string', sub: 'string', claims: 'map<string, dyn>', scopes: 'list<string>' },
  client: { id: 'string', method: 'string' },
  request: { method: 'string', transport: 'string' },
  tool: { name: 'string', annotations: 'map<string, dyn>' },
  resource: { uri: 'string' },
  prompt: { name: 'string', arguments: 'map<string, dyn>' },
} as const;

let shared: Environment | undefined;
let runtime: Environment | undefined;

/** The environment rules are type-checked in. */
export function policyEnvironment(): Environment {
  if (shared) return shared;
  const env = new Environment({ homogeneousAggregateLiterals: false });
  for (const [name, schema] of Object.entries(POLICY_VARIABLES)) env.registerVariable({ name, schema: { ...schema } });
  env.registerVariable('upstream', 'string');
  env.registerVariable('args', 'map<string, dyn>');
  registerPolicyFunctions(env);
  shared = env;
  return env;
}

/**
 * The environment rules are evaluated in: the same variables as `dyn`. The
 * declared shapes make cel-js wrap every object of every call in typed
 * wrappers, which costs about a microsecond per rule; an expression that
 * passed the typed check evaluates the same over plain objects.
 */
export function evaluationEnvironment(): Environment {
  if (runtime) return runtime;
  const env = new Environment({ homogeneousAggregateLiterals: false });
  for (const name of [...Object.keys(POLICY_VARIABLES), 'args']) env.registerVariable(name, 'dyn');
  env.registerVariable('upstream', 'string');
  registerPolicyFunctions(env);
  runtime = env;
  return env;
}
