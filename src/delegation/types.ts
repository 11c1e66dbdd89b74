import type { Principal } from '../identity/principal.js';

/**
 * What an upstream receives for one user: headers to add to each request to
 * it, and an id for the audit trail (a jti or a fingerprint — never the
 * credential itself).
 */
export interface DownstreamCredential {
  headers: Record<string, string>;
  id: string;
  /** Epoch seconds; undefined = does not expire (a service account). */
  expiresAt?: number;
}

export interface CredentialRequest {
  principal: Principal;
  /** The upstream (route) name. */
  upstream: string;
  /** The tool being called, when the strategy narrows scope per tool. */
  tool?: string;
}

export type StrategyName = 'token-exchange' | 'user-assertion' | 'service-account' | 'per-user-process' | 'none';

/**
 * One upstream's way of calling downstream as the user (docs/architecture.md §5). Rejects
 * when no credential can be had for this user: the call is then refused —
 * never retried with a broader credential.
 */
export interface DownstreamStrategy {
  readonly name: StrategyName;
  credentialFor(req: CredentialRequest): Promise<DownstreamCredential | undefined>;
  /** Drops what is cached for this user (she was revoked). */
  forgetUser?(p: Principal): void;
  close?(): void;
}

/**
 * The gateway's own signing identity (user assertions): keys identified by
 * `kid`, several valid at once so rotation needs no downtime, the public
 * halves published as a JWKS.
 */
export interface GatewaySigner {
  readonly issuer: string;
  sign(
    claims: Record<string, unknown>,
    opts: { audience: string; lifetimeSeconds: number },
  ): Promise<{ token: string; jti: string; kid: string; expiresAt: number }>;
  /** The public JWKS: every key a verifier may still meet (active, and retired but unexpired). */
  jwks(): { keys: Record<string, unknown>[] };
}
