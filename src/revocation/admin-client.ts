import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveSecret } from '../config/secrets.js';
import { BehalfError } from '../errors.js';
import type { Revocation } from './entry.js';

/** Where a running gateway's admin endpoint is, and its admin key by reference: `<state dir>/admin.json`. */
export interface AdminLocation {
  url: string;
  /** file:PATH (relative to admin.json) or env:NAME. */
  key: string;
}

export const ADMIN_FILE = 'admin.json';

export function writeAdminLocation(dir: string, loc: AdminLocation): void {
  const path = join(dir, ADMIN_FILE);
  writeFileSync(path, `${JSON.stringify(loc, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readAdminLocation(path: string): AdminLocation {
  let loc: Partial<AdminLocation>;
  try {
    loc = JSON.parse(readFileSync(path, 'utf8')) as Partial<AdminLocation>;
  } catch (err) {
    throw new BehalfError(
      'usage',
      `no admin endpoint described at ${path} (give --admin URL --admin-key REF)`,
      {},
      { cause: err },
    );
  }
  if (typeof loc.url !== 'string' || typeof loc.key !== 'string')
    throw new BehalfError('usage', `${path} does not describe an admin endpoint`);
  return { url: loc.url, key: loc.key };
}

export interface RevokeCall {
  kind: Revocation['kind'];
  value: string;
  issuer?: string;
  reason?: string;
  by?: string;
}

/** POSTs one revocation to a gateway's admin endpoint; the key is resolved from its reference here and sent only there. */
export async function postRevocation(
  loc: AdminLocation,
  call: RevokeCall,
  o: { baseDir: string; env?: NodeJS.ProcessEnv },
): Promise<Revocation> {
  const key = resolveSecret(loc.key, o.baseDir, o.env);
  let res: Response;
  try {
    res = await fetch(new URL('/revocations', loc.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(call),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new BehalfError('store_unavailable', `the admin endpoint ${loc.url} does not answer`, {}, { cause: err });
  }
  // A body that is not JSON leaves only the status to report, which the error below does.
  const body = (await res.json().catch(() => ({}))) as { revocation?: Revocation; error?: string; issues?: string[] };
  if (res.status === 201 && body.revocation) return body.revocation;
  const why = [body.error, ...(body.issues ?? [])].filter(Boolean).join('; ');
  throw new BehalfError(
    'usage',
    `the admin endpoint refused the revocation: HTTP ${res.status}${why ? ` (${why})` : ''}`,
  );
}

export function adminBaseDir(path: string): string {
  return dirname(path);
}
