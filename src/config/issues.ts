import type { z } from 'zod';

/** Formats zod issues as `path: reason` lines, the form an operator can act on; `raw` (the parsed file) lets a tagged block name a misspelt tag key. */
export function formatIssues(issues: z.core.$ZodIssue[], raw?: unknown): string {
  return issues
    .map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${missingTag(i, raw) ?? i.message}`)
    .join('\n');
}

/**
 * A tagged block (a discriminated union such as an upstream's `transport`)
 * whose tag key is absent: zod reports an invalid tag value, but the operator
 * typed `trasnport:`. Say that the key is missing, and name the keys that look
 * like a misspelling of it.
 */
function missingTag(issue: z.core.$ZodIssue, raw: unknown): string | undefined {
  const u = issue as { code: string; discriminator?: string; options?: unknown[] };
  if (u.code !== 'invalid_union' || !u.discriminator || raw === undefined) return undefined;
  const block = issue.path
    .slice(0, -1)
    .reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown> | undefined)?.[k], raw);
  if (!block || typeof block !== 'object' || u.discriminator in block) return undefined;
  const choices = (u.options ?? []).map(String).join(' | ');
  const near = Object.keys(block).filter((k) => editDistance(k.toLowerCase(), u.discriminator!.toLowerCase()) <= 2);
  const unknown = near.length
    ? `unknown key ${near.map((k) => `"${k}"`).join(', ')} (did you mean "${u.discriminator}"?); `
    : '';
  return `${unknown}"${u.discriminator}" is missing (one of ${choices})`;
}

function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      // Two neighbours swapped (trasnport) count as one edit.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        cur[j] = Math.min(cur[j]!, before[j - 2]! + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
