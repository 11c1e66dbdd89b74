import { BehalfError } from '../errors.js';
import { memoPromise } from '../promise-memo.js';
import type { CheckId } from './catalog.js';
import { resolveHeaders, type CredentialError } from './credentials.js';
import { EMPTY_PROFILE, type CredentialSource, type LoadedProfile, type Profile } from './profile.js';
import { Redactor } from './redactor.js';
import { Transcript } from './transcript.js';

export type TargetTransport = 'streamable' | 'sse';

/** What the review learnt about the target on the way, for the pack's fingerprint. */
export interface TargetFacts {
  serverInfo?: { name: string; version: string };
  protocolVersion?: string;
  /** Tool names listed to each identity, sorted. */
  toolsByIdentity: Record<string, string[]>;
  /** Full tool definitions as first listed (any identity): their hash says whether the tool surface changed. */
  tools?: unknown[];
  /** SHA-256 of the behalf config file reviewed, and of its keys' public state (ids, status, dates). */
  configHash?: string;
  keysHash?: string;
}

export interface ReviewInputs {
  target?: URL;
  transport: TargetTransport;
  profile?: LoadedProfile;
  configPath?: string;
  repoDir?: string;
  command?: string;
}

/** Refused by design: the profile did not mark the tool safe to call. */
export class UnsafeCallRefused extends BehalfError {
  constructor(tool: string) {
    super('unsafe_call_refused', `the review does not call ${tool}: it is not in the profile's safeToCall`);
    this.name = 'UnsafeCallRefused';
  }
}

/** Everything a check needs: the target, the profile, one budgeted and recorded fetch, and credentials resolved on demand. */
export class ReviewContext {
  readonly redactor = new Redactor();
  readonly transcript: Transcript;
  readonly profile: Profile;
  readonly facts: TargetFacts = { toolsByIdentity: {} };
  readonly deadline: number;
  private readonly cache = new Map<string, Promise<Record<string, string>>>();

  constructor(readonly inputs: ReviewInputs, readonly progress: (line: string) => void = () => {}) {
    this.profile = inputs.profile?.profile ?? EMPTY_PROFILE;
    this.transcript = new Transcript(this.redactor, this.profile.limits.maxRequests, this.profile.limits.requestTimeoutMs);
    this.deadline = Date.now() + this.profile.limits.timeSeconds * 1000;
  }

  get hasProfile(): boolean {
    return this.inputs.profile !== undefined;
  }

  get target(): URL | undefined {
    return this.inputs.target;
  }

  get fetch(): Transcript['fetch'] {
    return this.transcript.fetch;
  }

  /** Labels the requests that follow in the transcript. */
  step(check: CheckId, label: string): void {
    this.transcript.at(check, label);
  }

  /** The transcript position now; `since(mark)` gives the exchange numbers recorded after it, for an evidence item. */
  mark(): number {
    return this.transcript.count;
  }

  since(mark: number): number[] {
    return this.transcript.exchanges.slice(mark).map((e) => e.n);
  }

  remainingMs(): number {
    return this.deadline - Date.now();
  }

  identityNames(): string[] {
    return Object.keys(this.profile.identities);
  }

  /** Identities that are users (every identity but the client-only one). */
  userNames(): string[] {
    return this.identityNames().filter((n) => n !== this.profile.clientOnly);
  }

  /** An identity's headers, resolved once (a command runs the first time only). */
  identity(name: string): Promise<Record<string, string>> {
    const source = this.profile.identities[name];
    if (!source) return Promise.reject(new Error(`the profile has no identity ${name}`));
    return this.once(`identity.${name}`, source);
  }

  /** Forgets every resolved identity (a user was revoked on purpose): the next use runs its command again, for a fresh token. */
  forgetIdentities(): void {
    for (const key of [...this.cache.keys()]) if (key.startsWith('identity.')) this.cache.delete(key);
  }

  /**
   * The profile's `revoked` or `otherResource` credential, resolved once.
   * (shortLived is never cached: its few seconds of life must start when
   * BND-08 starts.)
   */
  credential(field: 'revoked' | 'otherResource'): Promise<Record<string, string>> | undefined {
    const source = this.profile[field];
    return source ? this.once(`profile.${field}`, source) : undefined;
  }

  /** Resolves a source the first time it is asked for; a failure is not kept, so a later ask tries again. */
  private once(key: string, source: CredentialSource): Promise<Record<string, string>> {
    return memoPromise(this.cache, key, () => this.resolve(source));
  }

  /** A credential source resolved now (fresh headers each time a command is given). */
  resolve(source: CredentialSource): Promise<Record<string, string>> {
    return resolveHeaders(source, this.inputs.profile?.dir ?? process.cwd(), this.redactor);
  }

  isSafe(tool: string): boolean {
    return this.profile.safeToCall.includes(tool);
  }

  assertSafe(tool: string): void {
    if (!this.isSafe(tool)) throw new UnsafeCallRefused(tool);
  }
}

export type { CredentialError };
