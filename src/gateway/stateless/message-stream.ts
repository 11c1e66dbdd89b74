import { createParser } from 'eventsource-parser';
import type { JsonRpcMessage } from '../../jsonrpc.js';
import { MAX_UPSTREAM_MESSAGE_BYTES } from '../upstream/upstream-messages.js';

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
  let sinceLast = 0;
  for await (const chunk of body) {
    sinceLast += chunk.length;
    // A message that never ends would grow the buffer without bound: past the limit the answer is dropped.
    if (sinceLast > MAX_UPSTREAM_MESSAGE_BYTES) throw new Error('upstream message exceeds the size limit');
    const texts = split.push(decoder.decode(chunk, { stream: true }));
    if (texts.length > 0) sinceLast = 0;
    for (const text of texts) {
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

/** SSE by eventsource-parser (the SDK's parser): each event's data, priming events and comments left out. */
class SseSplitter implements Splitter {
  private out: string[] = [];
  private readonly parser = createParser({
    onEvent: (e) => {
      if (e.data.trim()) this.out.push(e.data);
    },
  });

  push(text: string): string[] {
    this.parser.feed(text);
    const out = this.out;
    this.out = [];
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
