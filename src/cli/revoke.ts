import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { BehalfError } from '../errors.js';
import {
  ADMIN_FILE,
  adminBaseDir,
  postRevocation,
  readAdminLocation,
  type RevokeCall,
} from '../revocation/admin-client.js';
import { parse } from './args.js';

export const USAGE = `usage: behalf revoke (--user SUB [--issuer ISS] | --client ID | --token-jti JTI | --session ID | --key ID)
                     [--reason TEXT] [--admin URL --admin-key env:NAME|file:PATH] [--state-dir DIR]

Cuts a user, client, token, session or API key off on a running gateway (and its fleet) at once:
its open sessions and streams end, its calls are refused. Sent to the gateway's admin endpoint
(revocation.admin in its config) with an admin key (a key-store key of the admin client).
Without --admin, the endpoint and key are read from DIR/${ADMIN_FILE} (default ./.behalf, as the quickstart writes it).
--session takes a session id or its fingerprint (as audit records show it).`;

function username(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    // No user record (a container with a numeric uid): the admin key id alone names who revoked.
    return undefined;
  }
}

/** `behalf revoke …`: one revocation, through the admin endpoint of a running gateway. */
export async function revokeCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    user: { type: 'string' },
    issuer: { type: 'string' },
    client: { type: 'string' },
    'token-jti': { type: 'string' },
    session: { type: 'string' },
    key: { type: 'string' },
    reason: { type: 'string' },
    admin: { type: 'string' },
    'admin-key': { type: 'string' },
    'state-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const targets: Array<[RevokeCall['kind'], string | undefined]> = [
    ['user', values.user],
    ['client', values.client],
    ['token', values['token-jti']],
    ['session', values.session],
    ['key', values.key],
  ];
  const given = targets.filter(([, v]) => v !== undefined);
  if (given.length !== 1) throw new BehalfError('usage', USAGE);
  if (values.issuer && !values.user) throw new BehalfError('usage', '--issuer goes with --user');
  const [kind, value] = given[0]!;
  let loc;
  let baseDir = process.cwd();
  if (values.admin) {
    if (!values['admin-key']) throw new BehalfError('usage', '--admin needs --admin-key env:NAME or file:PATH');
    loc = { url: values.admin, key: values['admin-key'] };
  } else {
    const path = join(resolve(values['state-dir'] ?? process.env.BEHALF_STATE_DIR ?? '.behalf'), ADMIN_FILE);
    loc = readAdminLocation(path);
    baseDir = adminBaseDir(path);
  }
  const r = await postRevocation(
    loc,
    { kind, value: value!, issuer: values.issuer, reason: values.reason, by: username() },
    { baseDir },
  );
  process.stdout.write(
    `revoked ${r.kind} ${r.value}${r.issuer ? ` (${r.issuer})` : ''} until ${new Date(r.expiresAt).toISOString()}: open sessions and streams ended, further calls refused\n`,
  );
}
