// The conformance suite imports fs.globSync, which Node 20 lacks (22 has it): load the suite through a hook that supplies it.
import { register } from 'node:module';
register('./hooks.mjs', import.meta.url);
