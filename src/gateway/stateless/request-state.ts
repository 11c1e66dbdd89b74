import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { GatewayRuntime } from '../runtime.js';

/**
 * The gateway's own `requestState` for an input-required result (MRTR,
 * SEP-2322): the client echoes it on its retry, so it is attacker-controlled
 * input. It is sealed with AES-256-GCM under a key that lives only in this
 * process (a restart ends every pending continuation, which a client survives
 * by starting the call again), and binds everything a continuation must match.
 */
export interface SealedState {
  /** principalKey: client, user issuer and subject. */
  principal: string;
  route: string;
  /** callBinding of the request: method, name and a digest of its arguments. */
  call: string;
  /** Epoch ms after which the state is refused. */
  expires: number;
  /** Single use: a continuation spends it. */
  nonce: string;
  /** The upstream's own requestState, forwarded on the continuation; absent when it sent none. */
  upstream?: string;
  /** callId of the first request of the call (its audit records). */
  first: string;
  /** The inputRequests keys the client was asked: only answers to these are forwarded. */
  keys: string[];
}

/** How long a client has to answer an input request (a person may be typing). */
export const REQUEST_STATE_TTL_MS = 10 * 60_000;
/** Spent nonces kept until their state would have expired; at the bound a continuation is refused (fail closed). */
const MAX_SPENT = 100_000;
const PREFIX = 'bh1.';

interface Sealer {
  key: Buffer;
  spent: Map<string, number>;
}

const sealers = new WeakMap<GatewayRuntime, Sealer>();

function sealerOf(rt: GatewayRuntime): Sealer {
  let s = sealers.get(rt);
  if (!s) sealers.set(rt, (s = { key: randomBytes(32), spent: new Map() }));
  return s;
}

export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

export function sealRequestState(rt: GatewayRuntime, state: SealedState): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealerOf(rt).key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
  return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The state a token seals, or why it is refused (for the audit record; the client learns only that it is invalid). */
export function openRequestState(rt: GatewayRuntime, token: unknown): SealedState | { refused: string } {
  if (typeof token !== 'string' || !token.startsWith(PREFIX)) return { refused: 'not a requestState of this gateway' };
  const raw = Buffer.from(token.slice(PREFIX.length), 'base64url');
  if (raw.length < 29) return { refused: 'requestState too short' };
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealerOf(rt).key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    return JSON.parse(text) as SealedState;
  } catch {
    // The seal does not verify (tampered, or sealed by another process): the reason is all there is to say.
    return { refused: 'requestState seal does not verify' };
  }
}

/** Spends a state's nonce: false when it was spent before, or when the store is full of unexpired ones. */
export function spendNonce(rt: GatewayRuntime, state: SealedState, now = Date.now()): boolean {
  const { spent } = sealerOf(rt);
  if (spent.has(state.nonce)) return false;
  if (spent.size >= MAX_SPENT) for (const [n, exp] of spent) if (exp <= now) spent.delete(n);
  if (spent.size >= MAX_SPENT) return false;
  spent.set(state.nonce, state.expires);
  return true;
}
