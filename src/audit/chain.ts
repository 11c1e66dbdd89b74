import { hash } from 'node:crypto';
import type { AuditRecord } from './event.js';

/** The prevHash of the first record of a chain. */
export const GENESIS = '0'.repeat(64);

/**
 * Every field of a record except `hash`, in the one order the hash is taken
 * over. The type check below fails the build when AuditEvent gains a field
 * that is not listed here, so no column can ever be edited unnoticed.
 */
const HASHED_FIELDS = [
  'seq',
  'prevHash',
  'ts',
  'kind',
  'callId',
  'route',
  'upstream',
  'transport',
  'clientId',
  'clientMethod',
  'credentialId',
  'userIssuer',
  'userSubject',
  'tokenFingerprint',
  'sessionFingerprint',
  'method',
  'target',
  'args',
  'argsDigest',
  'decision',
  'ruleIds',
  'reason',
  'policyVersion',
  'outcome',
  'latencyMs',
  'downstreamStrategy',
  'downstreamCredentialId',
] as const satisfies ReadonlyArray<Exclude<keyof AuditRecord, 'hash'>>;
/**
 * Fields added after the first chains were written: hashed after the others
 * and only when present, so every record written before they existed keeps
 * its hash and old chains still verify.
 */
const LATER_FIELDS = [
  'refusedBy',
  'continuationOf',
  'instanceId',
  'userScopes',
  'userClaims',
] as const satisfies ReadonlyArray<Exclude<keyof AuditRecord, 'hash'>>;
type Unhashed = Exclude<keyof AuditRecord, 'hash' | (typeof HASHED_FIELDS)[number] | (typeof LATER_FIELDS)[number]>;
const _everyFieldIsHashed: [Unhashed] extends [never] ? true : Unhashed = true;

// The link comes first: canonicalTail is everything after it.
const _linkFirst: typeof HASHED_FIELDS extends readonly ['seq', 'prevHash', ...unknown[]] ? true : never = true;

/** `{"seq":` then `,"prevHash":` …: the constant part of the canonical form, built once. */
const PREFIXES = HASHED_FIELDS.map((f, i) => `${i ? ',' : '{'}${JSON.stringify(f)}:`);

/** A value in the canonical form: absent as null. */
function canonicalValue(v: unknown): string {
  return v === undefined || v === null ? 'null' : (JSON.stringify(v) ?? 'null');
}

/**
 * The canonical form a record's hash is taken over: a JSON object with every
 * field but `hash` in a fixed order, absent fields as null, so that the form
 * does not depend on how a store happens to return a row. Built as a string
 * (the same text JSON.stringify gives for such an object): it is on the path
 * of every call.
 */
export function canonicalRecord(rec: Omit<AuditRecord, 'hash'>): string {
  return chainedForm(rec.seq, rec.prevHash, canonicalTail(rec));
}

/**
 * The canonical form after seq and prevHash (the first two HASHED_FIELDS):
 * all a record says, known before it is chained, so it can be built where
 * the record is made and the link added where the head is known.
 */
export function canonicalTail(rec: Omit<AuditRecord, 'hash' | 'seq' | 'prevHash'>): string {
  let out = '';
  for (let i = 2; i < HASHED_FIELDS.length; i++)
    out += PREFIXES[i]! + canonicalValue((rec as Partial<AuditRecord>)[HASHED_FIELDS[i]!]);
  for (const f of LATER_FIELDS) {
    const v = rec[f];
    if (v !== undefined && v !== null) out += `,${JSON.stringify(f)}:${JSON.stringify(v)}`;
  }
  return `${out}}`;
}

/** The whole canonical form from a record's link (seq, prevHash) and its tail. */
function chainedForm(seq: unknown, prevHash: unknown, tail: string): string {
  return PREFIXES[0]! + canonicalValue(seq) + PREFIXES[1]! + canonicalValue(prevHash) + tail;
}

/** One-shot crypto.hash: several times cheaper than createHash for an input this small. */
export function recordHash(rec: Omit<AuditRecord, 'hash'>): string {
  return hash('sha256', canonicalRecord(rec), 'hex');
}

/** The hash of a record given as its link and its canonical tail: the same as recordHash of the whole record. */
export function linkHash(seq: number, prevHash: string, tail: string): string {
  return hash('sha256', chainedForm(seq, prevHash, tail), 'hex');
}

export type ChainProblemKind = 'edited' | 'broken-link' | 'seq-gap' | 'seq-order' | 'head-mismatch';

export interface ChainProblem {
  seq: number;
  problem: ChainProblemKind;
  detail: string;
}

export interface ChainReport {
  ok: boolean;
  count: number;
  head?: { seq: number; hash: string };
  problems: ChainProblem[];
}

export interface VerifyOptions {
  /**
   * A record hash kept outside the store (printed by an earlier verify,
   * shipped to a log host…) that must still be in the chain. Records appended
   * after it are fine: they are chained to it.
   */
  expectHead?: string;
  /**
   * true (default): the chain must start at seq 1 from GENESIS, as a whole
   * store does. false: the first record is the anchor, for an export that
   * starts mid-chain; its prevHash is to be compared with the source.
   */
  fromGenesis?: boolean;
}

/**
 * Walks a chain once and reports every inconsistency with the seq where it
 * shows:
 * - an edited record: its stored hash no longer matches its content;
 * - a deleted record: a seq gap, and the next record's prevHash does not
 *   match the hash before the gap;
 * - an inserted or reordered record: its prevHash matches nothing before it,
 *   and seqs are out of order or repeated.
 *
 * What a chain alone cannot show: deleting the newest records (the shorter
 * chain is still perfectly consistent), or someone with write access
 * rewriting and re-hashing every record from some point on. Both are caught
 * only against a head kept elsewhere: `expectHead`.
 */
export async function verifyChain(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  opts: VerifyOptions = {},
): Promise<ChainReport> {
  const problems: ChainProblem[] = [];
  const fromGenesis = opts.fromGenesis ?? true;
  let prev: { seq: number; hash: string } | undefined;
  let count = 0;
  let sawExpected = false;
  for await (const r of records) {
    count++;
    if (recordHash(r) !== r.hash)
      problems.push({ seq: r.seq, problem: 'edited', detail: 'content does not match its hash' });
    if (prev) {
      if (r.seq <= prev.seq) problems.push({ seq: r.seq, problem: 'seq-order', detail: `follows seq ${prev.seq}` });
      else if (r.seq !== prev.seq + 1)
        problems.push({
          seq: r.seq,
          problem: 'seq-gap',
          detail: `records ${gapText(prev.seq + 1, r.seq - 1)} missing`,
        });
      if (r.prevHash !== prev.hash)
        problems.push({
          seq: r.seq,
          problem: 'broken-link',
          detail: `prevHash does not match the hash of seq ${prev.seq}`,
        });
    } else if (r.seq === 1 && r.prevHash !== GENESIS) {
      problems.push({ seq: r.seq, problem: 'broken-link', detail: 'the first record does not start from genesis' });
    } else if (r.seq !== 1 && fromGenesis) {
      problems.push({
        seq: r.seq,
        problem: 'seq-gap',
        detail: `chain starts at seq ${r.seq}: records ${gapText(1, r.seq - 1)} missing`,
      });
    }
    if (r.hash === opts.expectHead) sawExpected = true;
    prev = { seq: r.seq, hash: r.hash };
  }
  if (opts.expectHead !== undefined && !sawExpected) {
    problems.push({
      seq: prev?.seq ?? 0,
      problem: 'head-mismatch',
      detail: `expected head ${opts.expectHead} is not in the chain (it ends at ${prev ? `seq ${prev.seq} ${prev.hash}` : 'no record'}): newest records deleted or chain rewritten`,
    });
  }
  return { ok: problems.length === 0, count, ...(prev ? { head: prev } : {}), problems };
}

function gapText(from: number, to: number): string {
  return from === to ? `${from}` : `${from}..${to}`;
}
