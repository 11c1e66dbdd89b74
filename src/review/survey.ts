import { canonicalJson } from '../shared/canonical-json.js';
import { sha256Hex } from '../shared/hash.js';
import type { ReviewContext } from './context.js';
import { connectAs, listTools } from './mcp.js';

/**
 * Before the checks: each user identity opens a session and lists its tools.
 * Several checks compare against these lists, and the pack's fingerprint
 * (server, protocol version, tool-list hash) comes from them. A failure here
 * is recorded, not fatal: the checks that need a list say so.
 */
export async function survey(ctx: ReviewContext): Promise<string[]> {
  const problems: string[] = [];
  // Credential commands start a process each (a few hundred ms): run them side by side, once; identity() caches the result.
  await Promise.allSettled([...ctx.identityNames().map((n) => ctx.identity(n)), ctx.credential('revoked'), ctx.credential('otherResource')]);
  for (const name of ctx.userNames()) {
    ctx.transcript.at('survey', `${name}: initialize and tools/list`);
    try {
      const conn = await connectAs(ctx, await ctx.identity(name));
      try {
        const tools = await listTools(conn);
        ctx.facts.toolsByIdentity[name] = tools.map((t) => t.name).sort();
        ctx.facts.tools ??= [];
        const known = new Set((ctx.facts.tools as Array<{ name: string }>).map((t) => t.name));
        for (const t of tools) if (!known.has(t.name)) (ctx.facts.tools as unknown[]).push(t);
      } finally {
        await conn.close();
      }
    } catch (err) {
      problems.push(`${name}: ${ctx.redactor.text((err as Error).message)}`);
    }
  }
  return problems;
}

export function toolListHash(tools: unknown[] | undefined): string | undefined {
  if (!tools) return undefined;
  const sorted = [...(tools as Array<{ name: string }>)].sort((a, b) => a.name.localeCompare(b.name));
  return `sha256:${sha256Hex(canonicalJson(sorted))}`;
}
