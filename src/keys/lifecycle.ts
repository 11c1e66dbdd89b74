/**
 * The lifecycle every credential the gateway manages shares — API keys in the
 * config (the static form), API keys and signing keys in the key store:
 * created, valid from notBefore (inclusive) until notAfter (exclusive), and
 * revoked at once when its status says so. Several keys may be valid at the
 * same time, which is what lets a rotation happen without downtime.
 *
 * Times are epoch milliseconds here; the files hold ISO 8601 strings.
 */

export type KeyKind = 'api-key' | 'signing';

export interface KeyLifecycle {
  id: string;
  kind: KeyKind;
  /** The client an API key authenticates. */
  client?: string;
  /** Where the key is declared: the gateway config (static) or the key store. */
  source: 'config' | 'store';
  createdAt?: number;
  notBefore?: number;
  notAfter?: number;
  status: 'active' | 'revoked';
  revokedAt?: number;
  /** Rotation links (key store only). */
  replaces?: string;
  replacedBy?: string;
}

export type KeyState = 'active' | 'not-yet-valid' | 'expired' | 'revoked';

export interface KeyAgePolicy {
  maxAgeDays: number;
  warnBeforeDays: number;
}

export const DEFAULT_AGE_POLICY: KeyAgePolicy = { maxAgeDays: 90, warnBeforeDays: 14 };
export const DAY_MS = 86_400_000;

/** What a key is at `now`: only `active` keys authenticate or sign. */
export function keyState(k: Pick<KeyLifecycle, 'status' | 'notBefore' | 'notAfter'>, now: number): KeyState {
  if (k.status === 'revoked') return 'revoked';
  if (k.notAfter !== undefined && now >= k.notAfter) return 'expired';
  if (k.notBefore !== undefined && now < k.notBefore) return 'not-yet-valid';
  return 'active';
}

export interface KeyWarning {
  /** Stable: a change of codes is what the gateway records; the message carries the countdown. */
  code: 'expiring' | 'max-age-soon' | 'over-max-age';
  message: string;
}

/**
 * The max-age policy: a key still in use is flagged when it expires within
 * `warnBeforeDays`, or when it is (or within `warnBeforeDays` will be) older
 * than `maxAgeDays`. Warnings are advice, not refusals: expiry (notAfter) is
 * what refuses a key, and `behalf keys create` sets it to maxAgeDays unless
 * told otherwise. A key with neither createdAt nor notAfter cannot be checked.
 */
export function keyWarnings(k: KeyLifecycle, policy: KeyAgePolicy, now: number): KeyWarning[] {
  const state = keyState(k, now);
  if (state === 'revoked' || state === 'expired') return [];
  const out: KeyWarning[] = [];
  const warnMs = policy.warnBeforeDays * DAY_MS;
  if (k.notAfter !== undefined && k.notAfter - now <= warnMs) {
    out.push({ code: 'expiring', message: `expires in ${duration(k.notAfter - now)} (${isoTime(k.notAfter)})` });
  }
  if (k.createdAt !== undefined) {
    const age = now - k.createdAt;
    const max = policy.maxAgeDays * DAY_MS;
    if (age > max)
      out.push({
        code: 'over-max-age',
        message: `older than the maximum age of ${policy.maxAgeDays} days (${duration(age)})`,
      });
    else if (max - age <= warnMs && (k.notAfter === undefined || k.notAfter > k.createdAt + max)) {
      out.push({
        code: 'max-age-soon',
        message: `reaches the maximum age of ${policy.maxAgeDays} days in ${duration(max - age)}`,
      });
    }
  }
  return out;
}

/** Compact human duration: 45s, 12m, 5h, 3d. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 2 * 86_400) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** ISO 8601 without milliseconds. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Parses an ISO date or date-time; undefined stays undefined. */
export function parseTime(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`not a date: ${s}`);
  return t;
}

/** One line for audit records and logs: who the key is for and when it is valid — never the key. */
export function describeKey(k: KeyLifecycle): string {
  const parts = [
    k.kind === 'signing' ? 'signing key' : `api-key of client ${k.client ?? '?'}`,
    `from the ${k.source === 'config' ? 'gateway config' : 'key store'}`,
  ];
  if (k.createdAt !== undefined) parts.push(`created ${isoTime(k.createdAt)}`);
  parts.push(
    `valid ${k.notBefore !== undefined ? isoTime(k.notBefore) : '-'} → ${k.notAfter !== undefined ? isoTime(k.notAfter) : 'no expiry'}`,
  );
  if (k.revokedAt !== undefined) parts.push(`revoked ${isoTime(k.revokedAt)}`);
  if (k.replaces) parts.push(`replaces ${k.replaces}`);
  if (k.replacedBy) parts.push(`replaced by ${k.replacedBy}`);
  return parts.join('; ');
}
