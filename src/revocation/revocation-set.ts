import type { Principal, User } from '../identity/principal.js';
import { keyOf, revocationKey, type Revocation } from './entry.js';

/**
 * The revocations in force, in one map keyed by (kind, issuer, value), so the
 * check every request pays is a handful of map lookups (none at all while
 * nothing is revoked). An entry past its `expiresAt` is forgotten when met,
 * and swept by `purge`.
 */
export class RevocationSet {
  private readonly entries = new Map<string, Revocation>();
  /** Session revocations in force: while there are none, a request's session id is not even hashed. */
  private sessions = 0;

  get size(): number {
    return this.entries.size;
  }

  get hasSessions(): boolean {
    return this.sessions > 0;
  }

  /** Adds or widens: a later revocation of the same thing replaces an earlier one, keeping the later expiry. */
  add(r: Revocation): boolean {
    const key = keyOf(r);
    const old = this.entries.get(key);
    if (old && old.at >= r.at && old.expiresAt >= r.expiresAt) return false;
    if (!old && r.kind === 'session') this.sessions++;
    this.entries.set(key, old ? { ...r, expiresAt: Math.max(r.expiresAt, old.expiresAt) } : r);
    return true;
  }

  all(now = Date.now()): Revocation[] {
    this.purge(now);
    return [...this.entries.values()];
  }

  purge(now = Date.now()): void {
    for (const [k, r] of this.entries) if (r.expiresAt <= now) this.forget(k, r);
  }

  /** The revocation that cuts this principal off, if any: its client, its API key, its user, its token or the key that signed it. */
  refusalFor(p: Principal, now = Date.now()): Revocation | undefined {
    if (this.entries.size === 0) return undefined;
    const c = p.client;
    return (
      this.live(revocationKey('client', c.id), now) ??
      (c.method === 'api-key' ? this.live(revocationKey('key', c.credentialId), now) : undefined) ??
      (p.user ? this.userRefusal(p.user, now) : undefined)
    );
  }

  /** A session cut off by its own id's revocation (by fingerprint). */
  sessionRefusal(fingerprint: string, now = Date.now()): Revocation | undefined {
    if (this.entries.size === 0) return undefined;
    return this.live(revocationKey('session', fingerprint), now);
  }

  private userRefusal(u: User, now: number): Revocation | undefined {
    const issuedBefore = (r: Revocation | undefined) =>
      r && (u.issuedAt === undefined || u.issuedAt * 1000 <= r.at) ? r : undefined;
    return (
      issuedBefore(this.live(revocationKey('user', u.subject, u.issuer), now)) ??
      issuedBefore(this.live(revocationKey('user', u.subject), now)) ??
      (u.tokenId !== undefined ? this.live(revocationKey('token', u.tokenId), now) : undefined) ??
      this.live(revocationKey('token', u.tokenFingerprint), now) ??
      (u.keyId !== undefined ? this.live(revocationKey('signing-key', u.keyId, u.issuer), now) : undefined)
    );
  }

  private live(key: string, now: number): Revocation | undefined {
    const r = this.entries.get(key);
    if (!r) return undefined;
    if (r.expiresAt > now) return r;
    this.forget(key, r);
    return undefined;
  }

  private forget(key: string, r: Revocation): void {
    this.entries.delete(key);
    if (r.kind === 'session') this.sessions--;
  }
}
