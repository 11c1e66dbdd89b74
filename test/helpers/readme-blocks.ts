/**
 * The runnable examples of a Markdown file: every ```sh, ```bash and ```ts
 * fenced block, with its line, and what HTML comments right before it say
 * about it. The markers (documented in test/readme-examples.test.ts):
 *   <!-- readme-test: skip — why -->           not run; the reason is required
 *   <!-- readme-test: stdio-server — note -->  the block is an MCP stdio server's command line
 *   <!-- readme-test: expect — TEXT -->         its output must contain TEXT (several allowed)
 */
export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number;
  lang: 'sh' | 'ts';
  code: string;
  skip?: string;
  stdioServer: boolean;
  expect: string[];
  /** Markers that could not be read, reported as failures of this block. */
  problems: string[];
}

const FENCE = /^```(\w+)?\s*$/;
const MARKER = /^<!--\s*readme-test:\s*([a-z-]+)\s*(?:[—-]+\s*(.*?))?\s*-->\s*$/;
const LANGS: Record<string, ReadmeBlock['lang']> = { sh: 'sh', bash: 'sh', shell: 'sh', ts: 'ts', typescript: 'ts' };

export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const out: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    const lang = LANGS[open[1] ?? ''];
    if (lang) out.push({ line: i + 1, lang, code: lines.slice(i + 1, end).join('\n'), ...markersBefore(lines, i) });
    i = end;
  }
  return out;
}

/** The marker comments directly above a fence (blank lines between them allowed). */
function markersBefore(lines: string[], fence: number): Omit<ReadmeBlock, 'line' | 'lang' | 'code'> {
  const found: Omit<ReadmeBlock, 'line' | 'lang' | 'code'> = { stdioServer: false, expect: [], problems: [] };
  for (let j = fence - 1; j >= 0; j--) {
    const text = lines[j]!.trim();
    if (text === '') continue;
    if (!text.startsWith('<!--')) break;
    const m = MARKER.exec(text);
    if (!m) {
      if (/readme-test/.test(text)) found.problems.push(`unreadable marker at line ${j + 1}: ${text}`);
      continue;
    }
    const [, kind, arg] = m;
    if (kind === 'skip') {
      if (!arg) found.problems.push(`line ${j + 1}: a skip marker must say why (<!-- readme-test: skip — reason -->)`);
      else found.skip = arg;
    } else if (kind === 'stdio-server') found.stdioServer = true;
    else if (kind === 'expect' && arg) found.expect.push(arg);
    else found.problems.push(`line ${j + 1}: unknown marker ${kind}`);
  }
  return found;
}
