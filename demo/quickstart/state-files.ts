import type { JWK } from 'jose';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Where the quickstart keeps its files: BEHALF_STATE_DIR or ./.behalf. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.BEHALF_STATE_DIR ?? '.behalf');
}

/** Development credentials, readable only by this user; never committed (.behalf/ is ignored). */
export interface DevSecrets {
  gateway: string;
  issuer: string;
  tokenEndpoint: string;
  resource: string;
  /** `revokedApiKey`: a key of the agent's that the key store marks revoked (the gateway refuses it). */
  agent: { clientId: string; clientSecret: string; apiKey: string; revokedApiKey: string };
  passwords: Record<string, string>;
  scope: string;
  /** The stand-in agent platform's private key (development only), for signed user contexts. */
  agentPlatform: { issuer: string; privateJwk: JWK; resource: string };
}

export interface QuickstartFile {
  gateway: string;
  sse: string;
  issuer: string;
  resourceMetadata: string;
  users: Record<string, { headers: Record<string, string>; owns?: string[]; role?: string }>;
  /** The files upstream (server-filesystem): its own resource, so its own user tokens; each user reaches only `<root>/<name>`. */
  files: { gateway: string; root: string; users: Record<string, { headers: Record<string, string>; folder: string }> };
  tokenCommand: string;
  /**
   * The second inbound pattern: the agent exchanges a user's token at the IdP
   * (RFC 8693) for one for the gateway, carrying `act: { sub: demo-agent }`.
   * The agent's client secret is in dev-secrets.json.
   */
  /** The third inbound pattern: per-call signed user context in `_meta["behalf/user"]`, on the crm-signed route (API key only). */
  signedContext: {
    gateway: string;
    metaKey: string;
    issuer: string;
    headers: Record<string, string>;
    privateKeyIn: string;
    tokenCommand: string;
  };
  tokenExchange: {
    tokenEndpoint: string;
    grantType: string;
    subjectTokenType: string;
    resource: string;
    clientId: string;
    clientSecretIn: string;
  };
  /** The gateway configuration file the running gateway was started from (no secrets: references and hashes). */
  gatewayConfig: string;
  /** What `behalf review` needs to review this quickstart. */
  review: {
    /** A review profile (no secrets: commands that print fresh headers). */
    profile: string;
    config: string;
    /** The demo CRM's list of credential fingerprints it received (loopback, no credential needed). */
    observer: string;
    /** DEVELOPMENT ONLY: the dev IdP's private signing JWK, so a review can sign claim attacks validly. */
    idpSigningKeyFile: string;
    note: string;
    command: string;
  };
}

function writePrivate(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function writeStateFiles(dir: string, qs: QuickstartFile, secrets: DevSecrets): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writePrivate(join(dir, 'dev-secrets.json'), secrets);
  writePrivate(join(dir, 'quickstart.json'), qs);
}

export function readDevSecrets(dir: string): DevSecrets {
  try {
    return JSON.parse(readFileSync(join(dir, 'dev-secrets.json'), 'utf8')) as DevSecrets;
  } catch {
    throw new Error(`no running quickstart found in ${dir} (start one with npm start)`);
  }
}

/** Removes the files only if they still describe this quickstart: another one may have replaced them. */
export function removeStateFiles(dir: string, gatewayUrl: string): void {
  try {
    const current = JSON.parse(readFileSync(join(dir, 'quickstart.json'), 'utf8')) as QuickstartFile;
    if (current.gateway !== gatewayUrl) return;
  } catch {
    return;
  }
  rmSync(join(dir, 'quickstart.json'), { force: true });
  rmSync(join(dir, 'dev-secrets.json'), { force: true });
}
