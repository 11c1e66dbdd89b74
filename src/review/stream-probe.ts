import { decodeJwt } from 'jose';
import type { ReviewContext } from './context.js';
import { requireTarget } from './mcp.js';

/** One server-sent event as it arrived. */
export interface SseEvent {
  event: string;
  data: string;
}

/** An event stream the review holds open on purpose, to see whether (and when) the server ends it. */
export interface StreamProbe {
  status: number;
  headers: Headers;
  /** True when the server answered with an event stream (anything else is read to its end at once). */
  isStream: boolean;
  events: SseEvent[];
  /** The time (ms since epoch) the server ended the stream, or undefined while it is open or once the review cut it. */
  readonly endedAt: number | undefined;
  /** The next event not yet taken, or undefined if none comes within `waitMs` (or the stream ends first). */
  nextEvent(waitMs: number): Promise<SseEvent | undefined>;
  /** Resolves with `endedAt` once the server ends the stream, or undefined if it is still open at `untilMs`. */
  waitForEnd(untilMs: number): Promise<number | undefined>;
  /** Cuts the stream from the review's side; never counted as the server ending it. */
  close(): void;
}

/**
 * Opens a GET event stream through the review's recorded fetch. `maxMs`
 * bounds how long it may ever stay open, so a forgotten probe cannot hold a
 * connection past the review.
 */
export async function openStream(ctx: ReviewContext, o: { url?: URL | string; headers: Record<string, string>; maxMs: number }): Promise<StreamProbe> {
  const ac = new AbortController();
  let endedAt: number | undefined;
  let cutByUs = false;
  let settled = false;
  const close = () => {
    if (endedAt === undefined) cutByUs = true;
    ac.abort();
  };
  const hardStop = setTimeout(close, Math.max(0, o.maxMs));
  const res = await ctx.fetch(o.url ?? requireTarget(ctx), { method: 'GET', headers: { accept: 'text/event-stream', ...o.headers }, signal: ac.signal }).catch((err: unknown) => {
    clearTimeout(hardStop);
    throw err;
  });
  const isStream = (res.headers.get('content-type') ?? '').includes('text/event-stream');
  const events: SseEvent[] = [];
  let taken = 0;
  const wake = new Set<() => void>();
  const notify = () => {
    for (const w of [...wake]) w();
  };

  void (async () => {
    if (!res.body) {
      endedAt = Date.now();
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { done: finished, value } = await reader.read();
        if (finished) break;
        buf += decoder.decode(value, { stream: true });
        for (let i = blockEnd(buf); i >= 0; i = blockEnd(buf)) {
          const block = buf.slice(0, i);
          buf = buf.slice(i).replace(/^(\r?\n){2}/, '');
          const ev = parseEvent(block);
          if (ev) events.push(ev);
        }
        notify();
      }
    } catch {
      // Reset or cut: who cut it is told by cutByUs.
    }
    if (!cutByUs) endedAt = Date.now();
  })().finally(() => {
    settled = true;
    clearTimeout(hardStop);
    notify();
  });

  const waitFor = (pred: () => boolean, untilMs: number): Promise<void> => new Promise((resolve) => {
    if (pred()) return resolve();
    const finish = () => {
      clearTimeout(timer);
      wake.delete(check);
      resolve();
    };
    const check = () => {
      if (pred()) finish();
    };
    const timer = setTimeout(finish, Math.max(0, untilMs - Date.now()));
    wake.add(check);
  });

  return {
    status: res.status,
    headers: res.headers,
    isStream,
    events,
    get endedAt() {
      return endedAt;
    },
    async nextEvent(waitMs) {
      await waitFor(() => events.length > taken || settled, Date.now() + waitMs);
      return events.length > taken ? events[taken++] : undefined;
    },
    async waitForEnd(untilMs) {
      await waitFor(() => settled, untilMs);
      return endedAt;
    },
    close,
  };
}

/** Where the first complete event block ends (before its blank line), or -1. */
function blockEnd(buf: string): number {
  const m = /\r?\n\r?\n/.exec(buf);
  return m ? m.index : -1;
}

function parseEvent(block: string): SseEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return data.length || event !== 'message' ? { event, data: data.join('\n') } : undefined;
}

/** A JWT's `exp` (seconds since epoch), read without verifying: the review only needs to know when the server should stop trusting it. */
export function tokenExpiry(token: string | undefined): number | undefined {
  if (!token) return undefined;
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    // Not a JWT: no expiry to read, which the caller reports.
    return undefined;
  }
}
