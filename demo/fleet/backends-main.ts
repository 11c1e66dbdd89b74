/**
 * What examples/fleet/run.sh starts besides the gateways: the quickstart's
 * dev IdP and demo CRM (development only), at fixed ports so the fleet's
 * gateway.yaml can name them. It writes, into --dir:
 *   keys.json   the agent's API key (hashed), a key store each instance copies;
 *   users.json  per demo user the headers an MCP client sends through nginx
 *               (the agent's API key and the user's token for --public-url).
 * `node dist/demo/fleet/backends-main.js --dir D --idp-port P --crm-port P --public-url URL`
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { startCrmHttp } from '../crm/http.js';
import { startDevIdp } from '../idp/index.js';
import { DEMO_USERS, userClaims } from '../quickstart/users.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    'idp-port': { type: 'string' },
    'crm-port': { type: 'string' },
    'public-url': { type: 'string' },
  },
  strict: true,
});
if (!values.dir || !values['idp-port'] || !values['crm-port'] || !values['public-url']) {
  process.stderr.write('usage: backends-main --dir D --idp-port P --crm-port P --public-url URL\n');
  process.exit(2);
}
const dir = values.dir;
const publicUrl = values['public-url'].replace(/\/$/, '');
const clientSecret = randomBytes(24).toString('base64url');
const passwords = Object.fromEntries(DEMO_USERS.map((u) => [u.name, randomBytes(12).toString('base64url')]));

const idp = await startDevIdp({
  port: Number(values['idp-port']),
  users: DEMO_USERS.map((u) => ({ sub: u.name, password: passwords[u.name]!, claims: userClaims(u) })),
  clients: [{ clientId: 'agent', clientSecret, grantTypes: ['password'], scope: 'mcp:tools' }],
  acceptResource: (r) => r.startsWith(`${publicUrl}/`),
});
const crm = await startCrmHttp({ port: Number(values['crm-port']), host: '127.0.0.1' });

const apiKey = generateApiKey();
const now = Date.now();
const entry = {
  id: 'agent-1',
  kind: 'api-key',
  client: 'agent',
  hash: hashApiKey(apiKey),
  createdAt: new Date(now).toISOString(),
  notBefore: new Date(now - 60_000).toISOString(),
  notAfter: new Date(now + 30 * 86_400_000).toISOString(),
  status: 'active',
};
writeFileSync(join(dir, 'keys.json'), JSON.stringify({ version: 1, keys: [entry] }), { mode: 0o600 });

const users: Record<string, Record<string, string>> = {};
for (const u of DEMO_USERS) {
  const { accessToken } = await idp.passwordToken({
    clientId: 'agent',
    clientSecret,
    username: u.name,
    password: passwords[u.name]!,
    resource: `${publicUrl}/mcp/crm`,
  });
  users[u.name] = { 'x-api-key': apiKey, authorization: `Bearer ${accessToken}` };
}
writeFileSync(join(dir, 'users.json'), `${JSON.stringify(users, null, 2)}\n`, { mode: 0o600 });
process.stdout.write(`${JSON.stringify({ issuer: idp.issuer, crm: crm.url })}\n`);

const stop = (): void => {
  Promise.all([crm.close(), idp.close()]).then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
