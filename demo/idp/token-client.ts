import type { TokenResult } from './types.js';

/** An error response from the token endpoint, e.g. `invalid_grant`. */
export class TokenRequestError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly errorDescription?: string,
  ) {
    super(`token request refused (${status} ${error}${errorDescription ? `: ${errorDescription}` : ''})`);
    this.name = 'TokenRequestError';
  }
}

// RFC 6749 §2.3.1: id and secret are form-encoded before being joined for Basic auth.
const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');

/** A token request over real HTTP, authenticating the client with client_secret_basic. */
export async function requestToken(
  tokenEndpoint: string,
  client: { clientId: string; clientSecret: string },
  params: Record<string, string | undefined>,
): Promise<TokenResult> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) body.set(k, v);
  const basic = Buffer.from(`${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`).toString('base64');

  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, accept: 'application/json' },
    body,
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) {
    const description = typeof json.error_description === 'string' ? json.error_description : undefined;
    throw new TokenRequestError(res.status, String(json.error ?? 'unknown_error'), description);
  }
  if (typeof json.access_token !== 'string' || typeof json.expires_in !== 'number') {
    throw new Error('token endpoint answered 200 without access_token/expires_in');
  }
  return {
    accessToken: json.access_token,
    expiresIn: json.expires_in,
    ...(typeof json.scope === 'string' ? { scope: json.scope } : {}),
    ...(typeof json.issued_token_type === 'string' ? { issuedTokenType: json.issued_token_type } : {}),
  };
}
