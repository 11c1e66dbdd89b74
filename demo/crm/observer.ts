import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { JWTPayload } from 'jose';
import { credentialFingerprint } from '../../src/shared/credential-fingerprint.js';

/**
 * The demo CRM as a downstream observer (development only): it remembers
 * which credentials reached it, as fingerprints, so a reviewer can tell
 * whether a gateway in front passed the client's own token through or used
 * one credential for everyone (behalf review, BND-09). It never keeps or
 * shows a credential, only its SHA-256 and, when the CRM verified it, the
 * claims that say whose it is.
 */

/** Headers that carry a credential to the CRM: the bearer it checks, and an API key it would ignore (a leak worth seeing). */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key'] as const;

export interface ObservedCredential {
  /** Increases by one per entry, so a reader can tell what is new even when old entries have dropped off. */
  seq: number;
  at: string;
  header: (typeof CREDENTIAL_HEADERS)[number];
  /** `sha256:<hex>` of the header value as received, without a leading `Bearer `. */
  fingerprint: string;
  /** True when the CRM verified it as a token of an issuer it trusts; only then are claims given. */
  verified: boolean;
  claims?: { sub?: unknown; aud?: unknown; iss?: unknown; act?: unknown };
}

/**
 * A reader tells what is new by comparing two answers (behalf review counts
 * sightings per credential), so entries must not drop off between its reads:
 * a review makes well under a hundred downstream requests, and this keeps
 * ten reviews' worth. `seq` lets a reader go by number instead.
 */
const DEFAULT_MAX_ENTRIES = 1000;

export class CredentialObserver {
  private readonly entries: ObservedCredential[] = [];
  private seq = 0;

  constructor(private readonly max = DEFAULT_MAX_ENTRIES) {}

  /** One entry per credential header of one request; `payload` is the verified token's, if it was verified. */
  record(headers: IncomingHttpHeaders, payload?: JWTPayload): void {
    for (const name of CREDENTIAL_HEADERS) {
      const raw = headers[name];
      const value = Array.isArray(raw) ? raw[0] : raw;
      if (!value) continue;
      const verified = name === 'authorization' && payload !== undefined;
      this.entries.push({
        seq: ++this.seq,
        at: new Date().toISOString(),
        header: name,
        fingerprint: credentialFingerprint(value),
        verified,
        ...(verified
          ? {
              claims: {
                sub: payload.sub,
                aud: payload.aud,
                iss: payload.iss,
                ...(payload.act !== undefined ? { act: payload.act } : {}),
              },
            }
          : {}),
      });
    }
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
  }

  snapshot(): { seen: ObservedCredential[]; total: number } {
    return { seen: this.entries.map((e) => ({ ...e })), total: this.seq };
  }

  /**
   * GET /observed. No credential is asked for: the answer holds fingerprints and
   * whose they are, nothing usable, and only a process on this machine gets it
   * (the CRM binds loopback in the quickstart; the peer address is checked too,
   * and the CRM's Host/Origin check keeps web pages out).
   */
  serve(req: IncomingMessage, res: ServerResponse): void {
    if (!isLoopback(req.socket.remoteAddress)) {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'loopback only' }));
      return;
    }
    if (req.method !== 'GET') {
      res
        .writeHead(405, { allow: 'GET', 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'GET only' }));
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify(this.snapshot()));
  }
}

function isLoopback(address: string | undefined): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address ?? '');
}
