import type { JWK } from 'jose';
import type { ReviewContext } from '../context.js';
import { sendRaw } from './auth-probes.js';

/**
 * The issuer's published keys, for the key-confusion attack: from
 * profile.issuer.jwksUri, else from the issuer's discovery document
 * (OpenID, then RFC 8414). Only public keys are ever fetched.
 */
export async function loadIssuerJwks(ctx: ReviewContext, tokenIss: string | undefined): Promise<{ keys?: JWK[]; error?: string }> {
  let uri = ctx.profile.issuer.jwksUri;
  if (!uri) {
    const iss = ctx.profile.issuer.issuer ?? tokenIss;
    if (!iss || !/^https?:\/\//.test(iss)) return { error: 'the token names no http(s) issuer and the profile no issuer.jwksUri' };
    const base = iss.replace(/\/$/, '');
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const doc = await getJson(ctx, `${base}${path}`);
      const found = (doc as { jwks_uri?: unknown } | undefined)?.jwks_uri;
      if (typeof found === 'string') {
        uri = found;
        break;
      }
    }
    if (!uri) return { error: `no jwks_uri in the discovery documents of ${iss}` };
  }
  const set = await getJson(ctx, uri);
  const keys = (set as { keys?: unknown } | undefined)?.keys;
  if (!Array.isArray(keys)) return { error: `no key set at ${uri}` };
  // A published set must never hold private parts; use only the public ones.
  return { keys: keys.filter((k): k is JWK => Boolean(k) && typeof k === 'object' && typeof (k as JWK).kty === 'string' && (k as JWK).d === undefined) };
}

async function getJson(ctx: ReviewContext, url: string): Promise<unknown> {
  const p = await sendRaw(ctx, { method: 'GET', url, headers: { accept: 'application/json' } });
  if (!p.reply || p.reply.status !== 200) return undefined;
  try {
    return JSON.parse(p.reply.text) as unknown;
  } catch {
    // Not JSON: no key set here, which is what the caller judges (the reply is in the transcript).
    return undefined;
  }
}
