/**
 * A raw HTTP client that reads a response as it streams: SSE events are
 * parsed one by one as they arrive (eventsource-parser, the SDK's own
 * parser), a JSON body is kept whole. Tests see exactly what went over the
 * wire, in order, on each connection.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { createParser } from 'eventsource-parser';

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  /** The data as JSON, when it is. */
  json?: Record<string, unknown>;
  /** Milliseconds since the test process started, when the event was parsed. */
  at: number;
}

export interface StreamedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  events: SseEvent[];
  /** `retry:` values the stream sent. */
  retries: number[];
  /** The whole body of a response that is not an event stream. */
  text(): Promise<string>;
  /** Resolves when the response ends (or is closed). */
  ended: Promise<void>;
  /** Resolves with the first event (seen or still to come) that matches; rejects after `ms`. */
  waitFor(match: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>;
  close(): void;
}

export function openStream(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<StreamedResponse> {
  const u = new URL(url);
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: o.method ?? (body === undefined ? 'GET' : 'POST'),
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...o.headers },
      },
      (res) => {
        const events: SseEvent[] = [];
        const retries: number[] = [];
        const waiters: Array<{ match: (e: SseEvent) => boolean; done: (e: SseEvent) => void }> = [];
        const parser = createParser({
          onEvent(e) {
            let json: Record<string, unknown> | undefined;
            try {
              json = e.data ? (JSON.parse(e.data) as Record<string, unknown>) : undefined;
            } catch {
              json = undefined; // not JSON: the raw data is kept
            }
            const ev: SseEvent = { id: e.id, event: e.event, data: e.data, json, at: performance.now() };
            events.push(ev);
            for (const w of waiters.filter((x) => x.match(ev))) {
              waiters.splice(waiters.indexOf(w), 1);
              w.done(ev);
            }
          },
          onRetry: (ms) => retries.push(ms),
        });
        const streaming = /text\/event-stream/.test(String(res.headers['content-type']));
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => (streaming ? parser.feed(c.toString('utf8')) : chunks.push(c)));
        const ended = new Promise<void>((r) => res.once('close', () => r()));
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          events,
          retries,
          ended,
          text: async () => {
            await ended;
            return Buffer.concat(chunks).toString('utf8');
          },
          waitFor(match, ms = 5000) {
            const seen = events.find(match);
            if (seen) return Promise.resolve(seen);
            return new Promise((done, fail) => {
              const timer = setTimeout(() => fail(new Error(`no matching event within ${ms} ms`)), ms);
              waiters.push({
                match,
                done: (e) => {
                  clearTimeout(timer);
                  done(e);
                },
              });
            });
          },
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
