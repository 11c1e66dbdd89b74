import type { JsonRpcMessage } from '../../jsonrpc.js';

/**
 * The JSON-RPC messages of a 2026-07-28 response body as they arrive: an SSE
 * stream (`data:` lines, an event per blank line), or JSON — one object, or
 * several written one after another (some servers stream newline-delimited
 * objects under `application/json`). JSON is split by bracket depth, outside
 * strings, so a pretty-printed object is one message too.
 */
export async function* messagesOf(
  body: AsyncIterable<Uint8Array>,
  eventStream: boolean,
): AsyncGenerator<JsonRpcMessage> {
  const decoder = new TextDecoder();
  const split = eventStream ? new SseSplitter() : new JsonSplitter();
  for await (const chunk of body) {
    for (const text of split.push(decoder.decode(chunk, { stream: true }))) {
      const m = parse(text);
      if (m) yield m;
    }
  }
  for (const text of split.push(`${decoder.decode()}\n\n`)) {
    const m = parse(text);
    if (m) yield m;
  }
}

function parse(text: string): JsonRpcMessage | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonRpcMessage) : undefined;
  } catch {
    // Not a message (an SSE comment's data, a keep-alive): nothing to relay.
    return undefined;
  }
}

interface Splitter {
  push(text: string): string[];
}

class SseSplitter implements Splitter {
  private buffer = '';
  private data: string[] = [];

  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    let nl: number;
    while ((nl = this.buffer.search(/\r?\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(this.buffer[nl] === '\r' ? nl + 2 : nl + 1);
      if (line === '') {
        if (this.data.length > 0) out.push(this.data.join('\n'));
        this.data = [];
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line[5] === ' ' ? 6 : 5));
      }
    }
    return out;
  }
}

class JsonSplitter implements Splitter {
  private buffer = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    for (let i = this.scanned; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{' || c === '[') {
        if (this.depth++ === 0) this.start = i;
      } else if ((c === '}' || c === ']') && this.depth > 0 && --this.depth === 0) {
        out.push(this.buffer.slice(this.start, i + 1));
        this.buffer = this.buffer.slice(i + 1);
        i = -1;
        this.start = -1;
      }
    }
    this.scanned = this.buffer.length;
    if (this.depth === 0) {
      this.buffer = '';
      this.scanned = 0;
    }
    return out;
  }
}
