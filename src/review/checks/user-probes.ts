import type { ReviewContext } from '../context.js';
import { clip, connectAs, rawRequest, type CallOutcome, type McpConn, type RawReply } from '../mcp.js';

/**
 * One MCP session per identity for the length of a check, opened on first
 * use: a check that makes several calls as the same user must not pay (and
 * record) a fresh initialize for each. A failed connect is remembered too, so
 * it is tried once.
 */
export class UserSessions {
  private readonly open = new Map<string, Promise<McpConn>>();

  constructor(private readonly ctx: ReviewContext) {}

  get(name: string): Promise<McpConn> {
    let p = this.open.get(name);
    if (!p) {
      p = this.ctx.identity(name).then((h) => connectAs(this.ctx, h));
      // Only marks the rejection handled until a caller awaits p, which then sees it.
      p.catch(() => {});
      this.open.set(name, p);
    }
    return p;
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(), () => {})));
  }
}

/** An error's message as evidence may show it: redacted and short. */
export function reasonOf(ctx: ReviewContext, err: unknown): string {
  return clip(ctx.redactor.text(String((err as Error)?.message ?? err)), 200);
}

/** A call's outcome on one line, redacted: results are pretty-printed JSON more often than not. */
export function outcomeLine(ctx: ReviewContext, o: CallOutcome): string {
  return `${o.kind}: ${ctx.redactor.text(o.detail).replace(/\s+/g, ' ')}`;
}

/** An answer as evidence shows it: "200 with a result", "403 with error "Origin not allowed"" (redacted, short). */
export function replyLine(ctx: ReviewContext, r: RawReply): string {
  const result = r.messages.some((m) => 'result' in m);
  const error = r.messages.find((m) => 'error' in m)?.error as { message?: string } | undefined;
  return `${r.status}${result ? ' with a result' : ''}${error ? ` with error "${clip(ctx.redactor.text(String(error.message ?? '')), 80)}"` : ''}`;
}

/** One hand-made POST: its answer and that answer's evidence line, or why there was none. */
export async function postOnce(ctx: ReviewContext, o: { url?: URL; headers: Record<string, string>; body: unknown }): Promise<{ reply?: RawReply; observed: string }> {
  try {
    const reply = await rawRequest(ctx, { method: 'POST', ...(o.url ? { url: o.url } : {}), headers: o.headers, body: o.body });
    return { reply, observed: replyLine(ctx, reply) };
  } catch (err) {
    return { observed: `no answer: ${reasonOf(ctx, err)}` };
  }
}
