/**
 * The development identity provider: a real OAuth 2.0 / OIDC authorization server (oidc-provider)
 * that issues RFC 9068 JWT access tokens for the quickstart and the integration tests.
 * Development only: it has a password grant, in-memory users and keys, and binds loopback only.
 */
export { startDevIdp } from './start.js';
export { generateSigningJwks } from './keys.js';
export { isLoopbackResource } from './resource.js';
export { TokenRequestError } from './token-client.js';
export type { DevClient, DevIdp, DevIdpOptions, DevUser, ExchangeRecord, TokenResult } from './types.js';
export {
  ACCESS_TOKEN_TYPE,
  DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  DEFAULT_EXCHANGED_TOKEN_TTL_SECONDS,
  DEFAULT_SCOPES,
  TOKEN_EXCHANGE_GRANT,
} from './types.js';
