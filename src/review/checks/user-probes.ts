import type { ReviewContext } from '../context.js';
import { connectAs, type CallOutcome, type McpConn } from '../mcp.js';

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
  const m = ctx.redactor.text(String((err as Error)?.message ?? err));
  return m.length > 200 ? `${m.slice(0, 200)}…` : m;
}

/** A call's outcome on one line, redacted: results are pretty-printed JSON more often than not. */
export function outcomeLine(ctx: ReviewContext, o: CallOutcome): string {
  return `${o.kind}: ${ctx.redactor.text(o.detail).replace(/\s+/g, ' ')}`;
}
