/**
 * behalf as operators run it, with every check on: dual mode (the agent's API
 * key plus the user's ES256 token from the dev IdP), a CEL policy that allows
 * `echo` for alice only, and the SQLite audit written before each forward.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startDevIdp, type DevIdp } from '../../demo/idp/index.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { EVERYTHING } from './peers.js';
import { startProcess, type Running } from './processes.js';

/** This compiled tree (dist/). */
const OWN_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const USERS = ['alice', 'bob'];
export const ROUTE = 'everything';

export interface Idp {
  idp: DevIdp;
  apiKey: string;
  /** The agent's API key and a fresh token of the user's for the route at `url`. */
  headersFor(user: string, url: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export async function startIdp(): Promise<Idp> {
  const idp = await startDevIdp({
    users: USERS.map((u) => ({ sub: u, password: 'bench', claims: { role: 'rep', customers: [] } })),
    clients: [{ clientId: 'agent', clientSecret: 'bench-secret', grantTypes: ['password'], scope: 'mcp:tools' }],
  });
  const apiKey = generateApiKey();
  return {
    idp,
    apiKey,
    async headersFor(user, url) {
      const { accessToken } = await idp.passwordToken({
        clientId: 'agent',
        clientSecret: 'bench-secret',
        username: user,
        password: 'bench',
        resource: url,
      });
      return { 'x-api-key': apiKey, authorization: `Bearer ${accessToken}` };
    },
    close: () => idp.close(),
  };
}

export type UpstreamKind = { http: string } | { stdio: true };

export interface FleetMember {
  redisUrl: string;
  prefix: string;
  pgUrl: string;
  instanceId: string;
  /** The load balancer's URL, which tokens are issued for. */
  publicUrl: string;
}

export interface Gateway extends Running {
  url: string;
  auditPath: string;
}

/**
 * One gateway process with one route (`everything`). `sessions` overrides the
 * session quotas (SESSION_DEFAULTS: 16 per user would evict the load's own
 * sessions), `server` the connection caps (all the bench's connections come
 * from 127.0.0.1: 1,024 per address by default); `perUserChildren` caps a stdio upstream's children (one per session).
 */
export async function startGateway(
  idp: Idp,
  upstream: UpstreamKind,
  o: {
    sessions?: Record<string, number>;
    server?: Record<string, number>;
    perUserChildren?: number;
    nodeArgs?: string[];
    /** An instance of a fleet (bench/load/fleet.ts): shared state in Redis, the audit trail in PostgreSQL. */
    fleet?: FleetMember;
  } = {},
): Promise<Gateway> {
  const dir = tempDir('behalf-load-');
  const children = o.perUserChildren ?? 64;
  const config = {
    server: { host: '127.0.0.1', port: 0, ...o.server },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'bench', hash: hashApiKey(idp.apiKey) }], oauthClientIds: ['agent'] }],
    userAuth: {
      mode: 'dual',
      issuers: [{ issuer: idp.idp.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] }],
    },
    upstreams: {
      [ROUTE]:
        'http' in upstream
          ? { transport: 'streamable-http', url: upstream.http }
          : {
              transport: 'stdio',
              command: process.execPath,
              args: [EVERYTHING, 'stdio'],
              perUser: { maxPerUser: children, maxTotal: children * 2 },
            },
    },
    policy: {
      rules: [
        {
          id: 'alice-echo',
          effect: 'allow',
          upstreams: [ROUTE],
          tools: ['echo'],
          when: 'user.sub == "alice" && user.claims.role == "rep" && size(args.message) < 1024',
        },
      ],
    },
    sessions: { maxPerUser: 256, ...o.sessions },
    audit: o.fleet ? { postgres: { url: 'env:BEHALF_PG_URL' } } : { sqlitePath: join(dir, 'audit.db') },
    ...(o.fleet && {
      state: { redis: { url: 'env:BEHALF_REDIS_URL', keyPrefix: o.fleet.prefix }, instanceId: o.fleet.instanceId },
    }),
  };
  if (o.fleet) Object.assign(config.server, { publicUrl: o.fleet.publicUrl });
  writeFileSync(join(dir, 'gateway.yaml'), stringify(config));
  const p = await startProcess(
    process.execPath,
    [...(o.nodeArgs ?? []), join(OWN_ROOT, 'src/cli/main.js'), 'gateway', '--config', join(dir, 'gateway.yaml')],
    {
      // A fleet instance serves once it has caught up with the fleet's changes.
      ready: o.fleet ? /fleet changes: listening on .*caught up/ : new RegExp(`behalf gateway: ${ROUTE} at `),
      // SIGINT: the gateway's orderly shutdown (a --cpu-prof profile is written only on a clean exit).
      stopSignal: 'SIGINT',
      ...(o.fleet && { env: { ...process.env, BEHALF_REDIS_URL: o.fleet.redisUrl, BEHALF_PG_URL: o.fleet.pgUrl } }),
    },
  );
  if (o.fleet) {
    // Its own address (the route line names the public one): where nginx sends it requests.
    const listening = p.tail.find((l) => l.includes('behalf gateway: listening on '))!;
    const own = `http://${listening.split(' on ')[1]!.trim()}/mcp/${ROUTE}`;
    return { ...p, url: own, auditPath: '' };
  }
  const line = p.tail.find((l) => l.includes(`${ROUTE} at `))!;
  return { ...p, url: line.split(' at ')[1]!.trim(), auditPath: join(dir, 'audit.db') };
}
