import './runtime-notice.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { generateSigningJwks, publicJwksOf } from './keys.js';
import { registerPasswordGrant } from './password-grant.js';
import { providerConfig, resourcePolicyFor, ROUTES } from './provider-config.js';
import { isLoopbackResource } from './resource.js';
import { requestToken } from './token-client.js';
import { registerTokenExchangeGrant } from './token-exchange-grant.js';
import {
  ACCESS_TOKEN_TYPE,
  DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  DEFAULT_EXCHANGED_TOKEN_TTL_SECONDS,
  DEFAULT_SCOPES,
  TOKEN_EXCHANGE_GRANT,
  type DevIdp,
  type DevIdpOptions,
  type DevUser,
  type ExchangeRecord,
} from './types.js';

// It hands out user tokens for a password: never reachable from another machine.
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/** Starts oidc-provider on node:http as a development-only issuer of user and client tokens. */
export async function startDevIdp(o: DevIdpOptions): Promise<DevIdp> {
  const host = o.host ?? '127.0.0.1';
  if (!LOOPBACK_HOSTS.has(host)) throw new Error(`dev IdP binds loopback only, not ${host}`);

  const users = usersBySub(o.users);
  const jwks = o.jwks ?? (await generateSigningJwks());
  const policy = resourcePolicyFor(jwks, o.scopes ?? DEFAULT_SCOPES, o.acceptResource ?? isLoopbackResource);

  // Listen first: the issuer has to contain the port, and port 0 is only resolved by listening.
  const server = createServer();
  await listen(server, o.port ?? 0, host);
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const extraClaims = new WeakMap<object, Record<string, unknown>>();
  const ttlSeconds = o.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS;
  const exchanges: ExchangeRecord[] = [];
  let provider: Provider;
  try {
    provider = new Provider(
      issuer,
      providerConfig({ users, clients: o.clients, policy, ttlSeconds, jwks, extraClaims }),
    );
    registerPasswordGrant(provider, users, policy, ttlSeconds);
    // Registered only when some client opted in, so discovery advertises only grants someone can use.
    if (o.clients.some((c) => c.grantTypes.includes(TOKEN_EXCHANGE_GRANT))) {
      registerTokenExchangeGrant(provider, {
        users,
        policy,
        publicJwks: publicJwksOf(jwks),
        extraClaims,
        ttlSeconds: o.exchangedTokenTtlSeconds ?? DEFAULT_EXCHANGED_TOKEN_TTL_SECONDS,
        record: (r) => {
          exchanges.push(r);
          o.onExchange?.(r);
        },
      });
    }
  } catch (err) {
    await stop(server);
    throw err;
  }
  // oidc-provider answers server_error without logging; the message is what makes a failing test debuggable.
  provider.on('server_error', (_ctx, err) => console.error(`dev IdP server_error: ${err.message}`));
  server.on('request', provider.callback());
  console.warn(`behalf dev IdP at ${issuer}: DEVELOPMENT ONLY (password grant, in-memory users and keys)`);

  const tokenEndpoint = `${issuer}${ROUTES.token}`;
  let closing: Promise<void> | undefined;
  return {
    issuer,
    jwksUri: `${issuer}${ROUTES.jwks}`,
    tokenEndpoint,
    publicJwks: publicJwksOf(jwks),
    passwordToken: ({ clientId, clientSecret, username, password, resource, scope, ttlSeconds: ttl }) =>
      requestToken(
        tokenEndpoint,
        { clientId, clientSecret },
        {
          grant_type: 'password',
          username,
          password,
          resource,
          scope,
          ttl: ttl === undefined ? undefined : String(ttl),
        },
      ),
    clientCredentialsToken: ({ clientId, clientSecret, resource, scope }) =>
      requestToken(tokenEndpoint, { clientId, clientSecret }, { grant_type: 'client_credentials', resource, scope }),
    exchangeToken: ({ clientId, clientSecret, subjectToken, subjectTokenType, resource, audience, scope }) =>
      requestToken(
        tokenEndpoint,
        { clientId, clientSecret },
        {
          grant_type: TOKEN_EXCHANGE_GRANT,
          subject_token: subjectToken,
          subject_token_type: subjectTokenType ?? ACCESS_TOKEN_TYPE,
          resource,
          audience,
          scope,
        },
      ),
    exchanges: () => exchanges.map((r) => ({ ...r })),
    close: () => (closing ??= stop(server)),
  };
}

function usersBySub(list: readonly DevUser[]): Map<string, DevUser> {
  const users = new Map<string, DevUser>();
  for (const u of list) {
    if (users.has(u.sub)) throw new Error(`dev IdP: duplicate user ${u.sub}`);
    users.set(u.sub, u);
  }
  return users;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Also cuts connections still in use, so close() never waits on a client and the port is free when it resolves. */
function stop(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}
