import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { toHeaders, type RawResponse } from './auth-http.js';
import { readResponseBody } from './raw-http.js';

/** Whether the openssl CLI is available (mTLS tests generate their PKI with it). */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface CertFiles {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  /** As Node's getPeerCertificate().fingerprint256: uppercase, colon-separated. */
  fingerprint256: string;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function files(dir: string, name: string): CertFiles {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const cert = readFileSync(certPath, 'utf8');
  return {
    certPath,
    keyPath,
    cert,
    key: readFileSync(keyPath, 'utf8'),
    fingerprint256: new X509Certificate(cert).fingerprint256,
  };
}

/** A self-signed CA valid for a day. */
export function makeCa(dir: string, name: string): CertFiles {
  openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return files(dir, name);
}

/** A leaf certificate signed by `ca`: a server cert for 127.0.0.1 or a client cert. */
export function makeLeaf(dir: string, ca: CertFiles, name: string, kind: 'server' | 'client'): CertFiles {
  const ext =
    kind === 'server'
      ? 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n'
      : 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.certPath,
      '-CAkey',
      ca.keyPath,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '1',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
  return files(dir, name);
}

export interface TlsClientOptions {
  /** CA that signed the gateway's server certificate. */
  ca: string;
  /** Client certificate and key to present, if any. */
  client?: { cert: string; key: string };
}

function agentFor(o: TlsClientOptions): Agent {
  // No keep-alive and no session cache: every request is its own handshake with its own certificate.
  return new Agent({ ca: o.ca, ...(o.client ?? {}), keepAlive: false, maxCachedSessions: 0 });
}

/** One raw HTTPS request with (or without) a client certificate; the body is read completely. */
export function httpsRequest(
  url: string,
  o: TlsClientOptions & { method?: string; headers?: Record<string, string>; body?: string },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, agent: agentFor(o) }, (res) => {
      readResponseBody(res).then(
        ({ text, json }) => resolve({ status: res.statusCode ?? 0, headers: toHeaders(res.headers), text, json }),
        reject,
      );
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/**
 * A fetch for the SDK 1.x client transports (their `fetch` option) that goes
 * over node:https with a client certificate: Node's global fetch cannot be
 * given one without undici's Agent, which this project does not depend on.
 */
export function tlsFetch(o: TlsClientOptions): (input: string | URL, init?: RequestInit) => Promise<Response> {
  const agent = agentFor(o);
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const method = init.method ?? 'GET';
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const req = request(new URL(String(input)), { method, headers, agent }, (res) => {
        const status = res.statusCode ?? 0;
        const body =
          NULL_BODY_STATUS.has(status) || method === 'HEAD'
            ? null
            : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        if (!body) res.resume();
        resolve(new Response(body, { status, headers: toHeaders(res.headers) }));
      });
      req.on('error', reject);
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) req.destroy(new Error('aborted'));
        else signal.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
      }
      if (init.body === undefined || init.body === null) req.end();
      else if (typeof init.body === 'string') req.end(init.body);
      else reject(new Error('tlsFetch: only string bodies are supported'));
    });
}
