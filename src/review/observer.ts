import { z } from 'zod';
import type { ReviewContext } from './context.js';
import { clip, rawRequest } from './mcp.js';
import type { Profile } from './profile.js';

/**
 * The reviewer's canary downstream reports what credentials reached it, as
 * fingerprints (never the credentials) plus the claims it could read from
 * them. Read before and after a call, the difference is what that call sent.
 */
const observed = z.object({
  fingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/i),
  claims: z.object({
    sub: z.string().optional(),
    aud: z.unknown().optional(),
    iss: z.string().optional(),
    act: z.unknown().optional(),
  }).loose().optional(),
}).loose();

const observerReply = z.object({ seen: z.array(observed) }).loose();

export type ObservedCredential = z.infer<typeof observed>;
export type Observer = NonNullable<Profile['downstream']>['observer'];

/** A short form for evidence: enough to compare, not a full hash of a secret worth grinding. */
export function shortFingerprint(fp: string): string {
  return `${fp.slice(0, 'sha256:'.length + 12)}…`;
}

/** Everything the observer has seen so far. Throws with a reason fit for evidence when it cannot be read. */
export async function readObserver(ctx: ReviewContext, observer: Observer): Promise<ObservedCredential[]> {
  for (const v of Object.values(observer.headers ?? {})) ctx.redactor.add(v);
  const reply = await rawRequest(ctx, { method: 'GET', url: observer.url, headers: { accept: 'application/json', ...observer.headers } });
  if (reply.status !== 200) throw new Error(`the downstream observer answered ${reply.status}`);
  let json: unknown;
  try {
    json = JSON.parse(reply.text);
  } catch {
    // Not kept as the cause: the parser's message quotes the answer unredacted; this one is redacted.
    throw new Error(`the downstream observer's answer is not JSON: ${clip(ctx.redactor.text(reply.text), 80)}`);
  }
  const parsed = observerReply.safeParse(json);
  if (!parsed.success) throw new Error('the downstream observer\'s answer lacks { seen: [{ fingerprint: "sha256:<hex>", claims? }] }');
  return parsed.data.seen;
}

/** What `after` holds beyond `before`, counting duplicates (the same credential seen twice more is two new sightings). */
export function newSightings(before: ObservedCredential[], after: ObservedCredential[]): ObservedCredential[] {
  const left = new Map<string, number>();
  for (const b of before) left.set(key(b), (left.get(key(b)) ?? 0) + 1);
  const out: ObservedCredential[] = [];
  for (const a of after) {
    const n = left.get(key(a)) ?? 0;
    if (n > 0) left.set(key(a), n - 1);
    else out.push(a);
  }
  return out;
}

function key(o: ObservedCredential): string {
  return JSON.stringify([o.fingerprint.toLowerCase(), o.claims ?? null]);
}
