/** A demo user. `claims` are copied into the user's access tokens (e.g. `{ role: 'rep', customers: ['c-100'] }`). */
export interface DevUser {
  sub: string;
  password: string;
  claims?: Record<string, unknown>;
}

/** A confidential client; it authenticates with client_secret_basic or client_secret_post. */
export interface DevClient {
  clientId: string;
  clientSecret: string;
  grantTypes: Array<'password' | 'client_credentials'>;
  /** Space-separated scopes this client may request; omitted means any of the IdP's scopes. */
  scope?: string;
}

export interface DevIdpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  users: DevUser[];
  clients: DevClient[];
  /** Scopes resource servers may be granted. */
  scopes?: string[];
  /** Default 7200. */
  accessTokenTtlSeconds?: number;
  /** Which `resource` values (RFC 8707) may become a token audience. Default: http(s) URLs on loopback. */
  acceptResource?: (resource: string) => boolean;
  /** Private signing JWKs; the first one signs access tokens. Default: one fresh ES256 key. */
  jwks?: { keys: object[] };
}

export interface TokenResult {
  accessToken: string;
  expiresIn: number;
}

export interface DevIdp {
  /** e.g. http://127.0.0.1:PORT (no trailing slash); equals the discovery `issuer`. */
  issuer: string;
  jwksUri: string;
  tokenEndpoint: string;
  publicJwks: { keys: object[] };
  /** Password grant through the real token endpoint over HTTP. Returns the raw access token (a JWT) and its expiry. */
  passwordToken(o: {
    clientId: string;
    clientSecret: string;
    username: string;
    password: string;
    resource: string;
    scope?: string;
  }): Promise<TokenResult>;
  /** client_credentials grant through the real token endpoint over HTTP. */
  clientCredentialsToken(o: {
    clientId: string;
    clientSecret: string;
    resource: string;
    scope?: string;
  }): Promise<TokenResult>;
  close(): Promise<void>;
}

export const DEFAULT_SCOPES: readonly string[] = [
  'mcp:tools',
  'mcp:resources',
  'mcp:prompts',
  'crm:read',
  'crm:write',
  'crm:export',
];

export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 7200;
