import type { AuditLog } from '../audit/audit-log.js';
import type { Principal } from '../identity/principal.js';
import type { SharedRedis } from '../state/shared-redis.js';
import { describeRevocation, type Revocation, type RevocationKind } from './entry.js';
import { RedisRevocations } from './redis-revocations.js';
import { RevocationSet } from './revocation-set.js';

/** What a source asks to revoke; the service adds the time, the expiry and the instance. */
export interface RevocationRequest {
  kind: RevocationKind;
  value: string;
  issuer?: string;
  reason?: string;
  actor: string;
  source: Revocation['source'];
  /** Epoch ms the revocation counts from (a user's tokens issued before it are refused); default now. */
  at?: number;
  /** How long it is remembered, ms; default revocation.ttlSeconds. */
  ttlMs?: number;
}

export interface RevocationServiceOptions {
  ttlMs: number;
  audit: AuditLog;
  log: (line: string) => void;
  instanceId: string;
  /** With state.redis: revocations are stored there and published to the fleet. */
  redis?: SharedRedis;
}

/**
 * The one place every revocation source feeds (admin CLI and endpoint,
 * introspection, Shared Signals, keys withdrawn from an issuer's JWKS) and
 * every enforcement point reads: the per-request check, the check right
 * before a call is forwarded, and the listeners that end what is already
 * open (src/revocation/enforce.ts). Local memory by default; with
 * state.redis the fleet shares them (redis-revocations.ts). Each revocation
 * put in force here is audited once on this instance, with who and why.
 */
export class RevocationService {
  readonly set = new RevocationSet();
  private readonly listeners: Array<(r: Revocation) => void> = [];
  private readonly fleet?: RedisRevocations;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly o: RevocationServiceOptions) {
    if (o.redis) {
      this.fleet = new RedisRevocations(o.redis, { apply: (r) => this.apply(r), log: o.log });
      this.fleet.start();
    }
    this.sweeper = setInterval(() => this.set.purge(), 60_000);
    this.sweeper.unref();
  }

  /** Told of every revocation put in force here, whichever instance made it. */
  onRevoked(listener: (r: Revocation) => void): void {
    this.listeners.push(listener);
  }

  /** The revocation that cuts this principal off, or undefined: a few map lookups. */
  check(p: Principal): Revocation | undefined {
    return this.set.refusalFor(p);
  }

  sessionRevoked(fingerprint: string): Revocation | undefined {
    return this.set.sessionRefusal(fingerprint);
  }

  list(): Revocation[] {
    return this.set.all();
  }

  /** Puts a revocation in force here at once, then shares it with the fleet. */
  async revoke(req: RevocationRequest): Promise<Revocation> {
    const now = Date.now();
    const r: Revocation = {
      kind: req.kind,
      value: req.value,
      ...(req.issuer ? { issuer: req.issuer } : {}),
      reason: (req.reason ?? '').slice(0, 500),
      actor: req.actor.slice(0, 200),
      source: req.source,
      at: Math.min(req.at ?? now, now),
      expiresAt: now + (req.ttlMs ?? this.o.ttlMs),
      from: this.o.instanceId,
    };
    this.apply(r);
    await this.fleet?.publish(r);
    return r;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private apply(r: Revocation): void {
    if (r.expiresAt <= Date.now() || !this.set.add(r)) return;
    this.o.log(`revocation: ${describeRevocation(r)}`);
    this.o.audit.tryAppend({
      ts: Date.now(),
      kind: 'revocation',
      outcome: `revoked ${r.kind}`,
      reason: describeRevocation(r),
      ...(r.kind === 'user' ? { userSubject: r.value, userIssuer: r.issuer } : {}),
      ...(r.kind === 'client' ? { clientId: r.value } : {}),
      ...(r.kind === 'key' ? { credentialId: r.value } : {}),
      ...(r.kind === 'session' ? { sessionFingerprint: r.value } : {}),
      instanceId: this.o.instanceId,
    });
    for (const l of this.listeners) {
      try {
        l(r);
      } catch (err) {
        this.o.log(`revocation listener failed: ${(err as Error).message}`);
      }
    }
  }
}
