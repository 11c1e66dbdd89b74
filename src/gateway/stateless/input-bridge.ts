import { randomBytes } from 'node:crypto';
import { principalFields, type AuditLog } from '../../audit/audit-log.js';
import { BehalfError } from '../../errors.js';
import type { GatewaySession } from '../session.js';
import type { BridgedCall } from './bridged-call.js';

/** Marks a requestState as the gateway's own bridge handle (`bh1.` + 192 random bits, base64url). */
export const BRIDGE_HANDLE_PREFIX = 'bh1.';
const HANDLE_BYTES = 24;

/**
 * Bounds on parked calls. Each holds an upstream call open and a little
 * memory until it is continued or expires; a principal past her cap, or the
 * gateway past its own, gets a refusal for the new call, and nobody else's
 * parked call is touched.
 */
export const MAX_PARKED_PER_PRINCIPAL = 16;
export const MAX_PARKED = 1024;

/** A call waiting for its client's input, and what a continuation must match to take it up. */
export interface ParkedCall {
  call: BridgedCall;
  /** The stateless connection the call runs on; kept in use (never swept as idle) while the call is parked. */
  session: GatewaySession;
  principalKey: string;
  route: string;
  /** callBinding of the request (method, name, arguments): a continuation must be the same call. */
  binding: string;
  /** The callId of the first request's records: every continuation's records link to it. */
  firstCallId: string;
}

interface Entry extends ParkedCall {
  timer: NodeJS.Timeout;
}

/** Why a handle could not be taken up; for the audit record only, never for the client. */
export type TakeResult = { parked: ParkedCall } | { refused: string };

/**
 * The parked calls of stateless clients, by handle. A handle is an
 * unguessable random value, not a sealed state: what it stands for never
 * leaves the gateway, so there is nothing to forge, and taking one up removes
 * it, so it is good for one continuation. Expired calls end: their upstream
 * requests are answered with an error.
 */
export class InputBridge {
  private readonly parked = new Map<string, Entry>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly audit: AuditLog,
  ) {}

  get size(): number {
    return this.parked.size;
  }

  /** Parks a call for `ttlMs` and returns its handle; throws `over_capacity` at a cap (the caller ends the call). */
  park(call: ParkedCall, ttlMs: number): string {
    if (this.parked.size >= MAX_PARKED) throw new BehalfError('over_capacity', 'too many calls wait for client input');
    let mine = 0;
    for (const e of this.parked.values()) if (e.principalKey === call.principalKey) mine++;
    if (mine >= MAX_PARKED_PER_PRINCIPAL)
      throw new BehalfError('over_capacity', 'too many of your calls wait for input; answer or drop one');
    const handle = BRIDGE_HANDLE_PREFIX + randomBytes(HANDLE_BYTES).toString('base64url');
    const timer = setTimeout(() => this.expire(handle), ttlMs);
    // A parked call must not keep a stopping gateway alive; its session's end closes the upstream anyway.
    timer.unref();
    this.parked.set(handle, { ...call, timer });
    call.session.inFlight++;
    return handle;
  }

  /**
   * Takes up a handle for a continuation. Only its own principal on its own
   * route takes it (and thereby uses it up); anyone else is refused and the
   * handle stays, so a stranger who saw it cannot end its owner's call.
   * Whether the continuation is the same call is the caller's check.
   */
  take(handle: string, principalKey: string, route: string): TakeResult {
    const entry = this.parked.get(handle);
    if (!entry) return { refused: 'requestState names no parked call (unknown, used or expired)' };
    if (entry.principalKey !== principalKey || entry.route !== route)
      return { refused: 'requestState of a call parked for another principal or route' };
    this.remove(handle, entry);
    const { timer: _timer, ...parked } = entry;
    return { parked };
  }

  /** Ends every parked call (the gateway stops). */
  close(): void {
    for (const [handle, entry] of this.parked) {
      this.remove(handle, entry);
      entry.call.abandon(new BehalfError('client_input_expired', 'the gateway is stopping'));
    }
  }

  private expire(handle: string): void {
    const entry = this.parked.get(handle);
    if (!entry) return;
    this.remove(handle, entry);
    entry.call.abandon(new BehalfError('client_input_expired'));
    this.log(`a call on ${entry.route} waited for client input past its time and was ended`);
    this.audit.tryAppend({
      ts: Date.now(),
      kind: 'outcome',
      route: entry.route,
      upstream: entry.route,
      sessionFingerprint: entry.session.fingerprint,
      outcome: 'input_expired',
      continuationOf: entry.firstCallId,
      ...principalFields(entry.session.principal),
    });
  }

  private remove(handle: string, entry: Entry): void {
    clearTimeout(entry.timer);
    this.parked.delete(handle);
    entry.session.inFlight--;
    entry.session.lastSeen = Date.now();
  }
}
