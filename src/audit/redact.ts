import { createHmac } from 'node:crypto';
import type { AuditConfig } from '../config/schema.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { globMatcher } from '../shared/glob.js';
import { looksLikeSecret, nameLooksSecret } from '../shared/secret-shapes.js';

/** The args column is a summary for people, not a copy of the call. */
export const ARGS_MAX_CHARS = 2048;
/** Below this, kept nested values are shown; deeper ones are marked, which also bounds the work on hostile input. */
const MAX_DEPTH = 16;

interface KeepRule {
  upstream: (name: string) => boolean;
  tool: (name: string) => boolean;
  args: readonly string[];
}

export interface ArgumentSummary {
  /** JSON of the arguments: kept values as sent (minus secrets), every other value a redaction marker. */
  args?: string;
  /** HMAC-SHA256 (hex) of the canonical full arguments: matches a record to a known call without storing it. */
  argsDigest?: string;
}

/**
 * Turns a call's arguments into what an audit record may hold. Values are
 * redacted unless a keep rule names them, and some are redacted even then:
 * a kept `password` or a kept value that is a bearer token is still a secret
 * in the audit database, and the database is read by more people than the
 * upstream is.
 */
export class ArgumentRedactor {
  private readonly rules: KeepRule[];

  constructor(
    keep: AuditConfig['arguments']['keep'],
    private readonly digestKey: Buffer,
  ) {
    this.rules = keep.map((k) => ({
      upstream: k.upstreams ? globMatcher(k.upstreams) : () => true,
      tool: k.tools ? globMatcher(k.tools) : () => true,
      args: k.args,
    }));
  }

  summarize(upstream: string, name: string, args: Record<string, unknown> | undefined): ArgumentSummary {
    if (args === undefined || args === null) return {};
    const argsDigest = createHmac('sha256', this.digestKey).update(canonicalJson(args)).digest('hex');
    const kept = new Set<string>();
    for (const r of this.rules) if (r.upstream(upstream) && r.tool(name)) for (const a of r.args) kept.add(a);
    const entries: Array<[string, unknown]> = [];
    // Object.entries, not property assignment: a key named __proto__ stays a plain entry.
    for (const [key, value] of Object.entries(args)) {
      entries.push(redactedMember(key) ?? [key, kept.has(key) ? scrub(value, 0) : marker(value)]);
    }
    return { args: capped(entries), argsDigest };
  }
}

/** What stands in for a value that is not kept: its type and size, never its content (and nothing is scanned: the common path stays cheap). */
function marker(value: unknown): string {
  if (typeof value === 'string') return `[redacted string ${value.length}]`;
  if (Array.isArray(value)) return `[redacted array ${value.length}]`;
  if (value === null) return '[redacted null]';
  return `[redacted ${typeof value}]`;
}

/** A kept value as sent, except secret-named members and secret-looking strings anywhere inside it. */
export function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return looksLikeSecret(value) ? '[redacted secret]' : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[redacted: nested too deep]';
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => redactedMember(k) ?? [k, scrub(v, depth + 1)]));
}

/** A member whose name says (or is) a secret: never shown, whatever its value. */
function redactedMember(key: string): [string, string] | undefined {
  if (looksLikeSecret(key)) return [`[redacted key ${key.length}]`, '[redacted secret]'];
  if (nameLooksSecret(key)) return [key, '[redacted secret]'];
  return undefined;
}

/** Room always left for the final "[truncated]" entry, so the result never exceeds the cap. */
const MARKER_ROOM = 64;

/**
 * The entries as one JSON object of at most ARGS_MAX_CHARS characters, still
 * valid JSON: a value too long to fit is replaced by its length, and entries
 * that no longer fit at all are counted under a "[truncated]" key.
 */
function capped(entries: Array<[string, unknown]>): string {
  const budget = ARGS_MAX_CHARS - MARKER_ROOM;
  const parts: string[] = [];
  let size = 2;
  for (const [i, [key, value]] of entries.entries()) {
    const json = JSON.stringify(value) ?? 'null';
    let part = `${JSON.stringify(key)}:${json}`;
    if (size + part.length + 1 > budget) part = `${JSON.stringify(key)}:"[truncated ${json.length} chars]"`;
    if (size + part.length + 1 > budget) {
      parts.push(`"[truncated]":"${entries.length - i} of ${entries.length} arguments not shown"`);
      break;
    }
    parts.push(part);
    size += part.length + 1;
  }
  return `{${parts.join(',')}}`;
}
