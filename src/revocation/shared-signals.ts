import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { SharedSignalsConfig } from '../config/schema-revocation.js';
import type { RevocationRequest } from './service.js';

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
/** The events that cut a user's tokens issued before them off. */
const USER_EVENTS = new Map([
  [`${CAEP}session-revoked`, 'session revoked'],
  [`${CAEP}credential-change`, 'credential changed'],
  [`${CAEP}token-claims-change`, 'token claims changed'],
  [`${RISC}account-disabled`, 'account disabled'],
  [`${RISC}account-purged`, 'account purged'],
  [`${RISC}credential-compromise`, 'credential compromised'],
]);

/** RFC 8935 §2.4 error codes: what the transmitter is told when a SET is refused. */
export type SetError =
  'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed';

export class SetRefused extends Error {
  constructor(
    readonly err: SetError,
    description: string,
  ) {
    super(description);
    this.name = 'SetRefused';
  }
}

interface Subject {
  format?: unknown;
  iss?: unknown;
  sub?: unknown;
  id?: unknown;
  user?: Subject;
}

/**
 * The Shared Signals (CAEP/RISC) receiver's judgement of one pushed Security
 * Event Token (RFC 8417, push delivery RFC 8935): signed by the transmitter
 * (its JWKS, asymmetric algorithms only), the configured `iss` and `aud`,
 * `typ: secevent+jwt`, an `iat` and a `jti`. Each event about a user that
 * this receiver knows becomes a user revocation counting from the event's
 * time, so her tokens issued before it are refused and her sessions end,
 * while a token she obtains afterwards works.
 */
export class SetReceiver {
  private readonly keys: JWTVerifyGetKey;

  constructor(
    private readonly cfg: SharedSignalsConfig,
    private readonly o: { baseDir: string; userIssuers: readonly string[]; ttlMs: number },
  ) {
    if (cfg.jwksUri) this.keys = createRemoteJWKSet(new URL(cfg.jwksUri), { timeoutDuration: 3000 });
    else {
      const path = cfg.jwks!.slice('file:'.length);
      const full = isAbsolute(path) ? path : resolve(o.baseDir, path);
      this.keys = createLocalJWKSet(JSON.parse(readFileSync(full, 'utf8')) as JSONWebKeySet);
    }
  }

  /** The revocations a SET asks for; throws SetRefused for anything not verified or not understood. */
  async revocationsOf(set: string): Promise<RevocationRequest[]> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(set, this.keys, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: this.cfg.algorithms,
        typ: 'secevent+jwt',
        requiredClaims: ['iat', 'jti'],
      }));
    } catch (err) {
      throw refusalOf(err);
    }
    const events = payload.events as
      Record<string, { subject?: Subject; event_timestamp?: unknown; reason_admin?: unknown }> | undefined;
    if (typeof events !== 'object' || events === null || Array.isArray(events))
      throw new SetRefused('invalid_request', 'no events claim');
    const out: RevocationRequest[] = [];
    for (const [type, event] of Object.entries(events)) {
      const what = USER_EVENTS.get(type);
      if (!what) continue;
      const subject = (event?.subject ?? payload.sub_id) as Subject | undefined;
      const user = this.userOf(subject);
      if (!user) throw new SetRefused('invalid_request', `${what}: subject not understood`);
      const ts = typeof event?.event_timestamp === 'number' ? event.event_timestamp * 1000 : undefined;
      const why = typeof event?.reason_admin === 'object' ? JSON.stringify(event.reason_admin).slice(0, 200) : '';
      out.push({
        kind: 'user',
        value: user.sub,
        issuer: user.iss,
        reason: `${what}${why ? ` ${why}` : ''} (SET ${String(payload.jti).slice(0, 64)})`,
        actor: `shared signals ${this.cfg.issuer}`,
        source: 'shared-signals',
        ...(ts !== undefined ? { at: ts } : {}),
        ttlMs: this.o.ttlMs,
      });
    }
    if (!out.length) throw new SetRefused('invalid_request', 'no event this receiver acts on');
    return out;
  }

  /** iss_sub names the user fully; opaque (or a bare sub) is a subject of the configured user-token issuer. */
  private userOf(s: Subject | undefined): { iss: string; sub: string } | undefined {
    if (!s || typeof s !== 'object') return undefined;
    if (s.user) return this.userOf(s.user);
    const defaultIssuer =
      this.cfg.issuerOfSubjects ?? (this.o.userIssuers.length === 1 ? this.o.userIssuers[0] : undefined);
    if (s.format === 'iss_sub' && typeof s.iss === 'string' && typeof s.sub === 'string')
      return this.o.userIssuers.includes(s.iss) ? { iss: s.iss, sub: s.sub } : undefined;
    if (s.format === 'opaque' && typeof s.id === 'string' && defaultIssuer) return { iss: defaultIssuer, sub: s.id };
    return undefined;
  }
}

function refusalOf(err: unknown): SetRefused {
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return new SetRefused('invalid_issuer', 'issuer not accepted');
    if (err.claim === 'aud') return new SetRefused('invalid_audience', 'audience not accepted');
    return new SetRefused('invalid_request', `claim ${err.claim} ${err.reason}`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey)
    return new SetRefused('invalid_key', 'signature not verified with the transmitter keys');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new SetRefused('invalid_key', 'algorithm not accepted');
  return new SetRefused('invalid_request', err instanceof joseErrors.JOSEError ? err.code : 'not a signed SET');
}
