import type { z } from 'zod';

/** Formats zod issues as `path: reason` lines, the form an operator can act on. */
export function formatIssues(issues: z.core.$ZodIssue[]): string {
  return issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('\n');
}
