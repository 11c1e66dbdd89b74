/**
 * The downstream the review servers call, standing in for the reviewer's
 * canary (BND-09): it answers any call under /crm/ and remembers which
 * credential arrived — as a fingerprint, never the credential — and what the
 * credential claims to be (decoded, not verified: it only has to tell users
 * and shared credentials apart). GET /seen lists what it saw.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { credentialFingerprint } from '../../src/shared/credential-fingerprint.js';

export interface SeenClaims {
  sub?: unknown;
  aud?: unknown;
  iss?: unknown;
  act?: unknown;
}
export interface SeenEntry {
  fingerprint: string;
  claims?: SeenClaims;
}

export interface Observer {
  /** GET → `{ seen: SeenEntry[] }` (the profile's downstream.observer.url). */
  url: string;
  /** Where the servers send their downstream calls, and the audience of the credentials they get for it. */
  audience: string;
  seen(): SeenEntry[];
  close(): Promise<void>;
}

/** As the review computes it: sha256 of the credential string as received, without the scheme. */
export const fingerprintOf = credentialFingerprint;

function claimsOf(credential: string): SeenClaims | undefined {
  try {
    const c = decodeJwt(credential);
    return { sub: c.sub, aud: c.aud, iss: c.iss, ...(c.act !== undefined ? { act: c.act } : {}) };
  } catch {
    return undefined;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

export async function startObserver(): Promise<Observer> {
  const seen: SeenEntry[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://observer.invalid').pathname;
    if (req.method === 'GET' && path === '/seen') return json(res, 200, { seen });
    if (!path.startsWith('/crm/')) return json(res, 404, { error: 'not found' });
    const credential = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!credential) return json(res, 401, { error: 'no credential' });
    const claims = claimsOf(credential);
    seen.push({ fingerprint: fingerprintOf(credential), ...(claims ? { claims } : {}) });
    json(res, 200, { ok: true });
  };
  const http = createServer((req, res) => {
    req.resume();
    req.on('end', () => handle(req, res));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    url: `${origin}/seen`,
    audience: `${origin}/crm`,
    seen: () => seen.map((e) => ({ ...e })),
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}
