/** A demo user. `claims` are copied into the user's access tokens (e.g. `{ role: 'rep', customers: ['c-100'] }`). */
export interface DevUser {
  sub: string;
  password: string;
  claims?: Record<string, unknown>;
}

/** RFC 8693 token exchange: a client must list it in its grantTypes to use it. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A confidential client; it authenticates with client_secret_basic or client_secret_post. */
export interface DevClient {
  clientId: string;
  clientSecret: string;
  grantTypes: Array<'password' | 'client_credentials' | typeof TOKEN_EXCHANGE_GRANT>;
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
  /** Upper bound of a token-exchange token's lifetime (never beyond its subject token's expiry). Default 300. */
  exchangedTokenTtlSeconds?: number;
  /** Called after every token exchange request the grant handled (issued or refused); never with a token. */
  onExchange?: (r: ExchangeRecord) => void;
  /** Which `resource` values (RFC 8707) may become a token audience. Default: http(s) URLs on loopback. */
  acceptResource?: (resource: string) => boolean;
  /** Private signing JWKs; the first one signs access tokens. Default: one fresh ES256 key. */
  jwks?: { keys: object[] };
}

export interface TokenResult {
  accessToken: string;
  expiresIn: number;
  /** As the token endpoint answered, when it did (token exchange). */
  scope?: string;
  issuedTokenType?: string;
}

/** What the IdP did with one token exchange request: who asked, for whom, for what — never the tokens. */
export type ExchangeRecord =
  | {
      outcome: 'issued';
      clientId: string;
      sub: string;
      audience: string;
      scope?: string;
      jti: string;
      expiresIn: number;
    }
  | { outcome: 'refused'; clientId: string; error: string };

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
    /** A shorter life than the configured one (the `ttl` parameter; never longer, at least 1 s). */
    ttlSeconds?: number;
  }): Promise<TokenResult>;
  /** client_credentials grant through the real token endpoint over HTTP. */
  clientCredentialsToken(o: {
    clientId: string;
    clientSecret: string;
    resource: string;
    scope?: string;
  }): Promise<TokenResult>;
  /** RFC 8693 token exchange through the real token endpoint over HTTP (client_secret_basic). */
  exchangeToken(o: {
    clientId: string;
    clientSecret: string;
    subjectToken: string;
    /** Default urn:ietf:params:oauth:token-type:access_token. */
    subjectTokenType?: string;
    resource?: string;
    audience?: string;
    scope?: string;
  }): Promise<TokenResult>;
  /** Every token exchange the grant handled so far, oldest first (a copy). */
  exchanges(): ExchangeRecord[];
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
export const DEFAULT_EXCHANGED_TOKEN_TTL_SECONDS = 300;
