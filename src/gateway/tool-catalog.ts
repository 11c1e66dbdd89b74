import type { UpstreamConnection } from './upstream/connection.js';

interface ToolInfo {
  annotations: Record<string, unknown>;
}

const MAX_PAGES = 50;

/**
 * What one upstream connection says about its tools, for rules on tool
 * annotations (ToolHive #4235: rules on annotations that were dropped on the
 * way denied everything). The gateway lists the tools itself, all pages,
 * before the first call it has to judge by annotations, and forgets them
 * when the upstream announces a change. Annotations are the upstream's own
 * claims: a rule on them trusts that upstream.
 */
export class ToolCatalog {
  private tools?: Map<string, ToolInfo>;
  private loading?: Promise<Map<string, ToolInfo>>;
  private generation = 0;

  constructor(private readonly upstream: UpstreamConnection) {}

  invalidate(): void {
    this.generation++;
    this.tools = undefined;
    this.loading = undefined;
  }

  /** Rejects when the upstream cannot list its tools: the caller then denies (fail closed). */
  async lookup(): Promise<(name: string) => ToolInfo | undefined> {
    const tools = this.tools ?? (await (this.loading ??= this.load()));
    return (name) => tools.get(name);
  }

  private async load(): Promise<Map<string, ToolInfo>> {
    // What is loaded now is forgotten on list_changed, which the upstream may send on its standing stream.
    this.upstream.listen();
    const generation = this.generation;
    const tools = new Map<string, ToolInfo>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await this.upstream.request({
        jsonrpc: '2.0',
        id: `behalf-catalog-${page}`,
        method: 'tools/list',
        params: cursor ? { cursor } : {},
      });
      if (!('result' in r) || !Array.isArray(r.result.tools)) throw new Error('upstream did not list its tools');
      for (const t of r.result.tools as Record<string, unknown>[]) {
        const a = t.annotations;
        if (typeof t.name === 'string')
          tools.set(t.name, {
            annotations: typeof a === 'object' && a !== null && !Array.isArray(a) ? (a as Record<string, unknown>) : {},
          });
      }
      cursor = typeof r.result.nextCursor === 'string' ? r.result.nextCursor : undefined;
      if (!cursor) break;
    }
    if (generation === this.generation) this.tools = tools;
    else this.loading = undefined;
    return tools;
  }
}
