import { generateApiKey, hashApiKey } from '../identity/api-keys.js';

/** `behalf keys generate`: a new API key, shown once, and the hash that goes into the config. */
export function keysCommand(argv: string[]): void {
  if (argv[0] !== 'generate') throw new Error('usage: behalf keys generate');
  const key = generateApiKey();
  process.stdout.write(`${JSON.stringify({ key, hash: hashApiKey(key), note: 'store the key in the client\'s secret store; put only the hash in the gateway config' }, null, 2)}\n`);
}
