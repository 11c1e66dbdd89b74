import { BehalfError } from '../errors.js';
import type { Redactor } from './redactor.js';

/** One HTTP exchange as the pack keeps it: already redacted, bodies cut at BODY_LIMIT. */
export interface Exchange {
  n: number;
  check: string;
  label: string;
  at: string;
  ms?: number;
  request: { method: string; url: string; headers: Record<string, string>; body?: string };
  response?: { status: number; headers: Record<string, string>; body?: string; bodyTruncated?: boolean };
  error?: string;
}

const BODY_LIMIT = 16 * 1024;

/** Thrown when the review would exceed its request budget: the review is never a load test. */
export class BudgetExceeded extends BehalfError {
  constructor(limit: number) {
    super('review_budget_exceeded', `request budget of ${limit} exhausted`);
    this.name = 'BudgetExceeded';
  }
}

/**
 * Records every request the review sends, through one budgeted fetch.
 * Raw values never reach `exchanges`: headers and bodies are redacted as
 * they are recorded.
 */
export class Transcript {
  readonly exchanges: Exchange[] = [];
  private current = { check: 'setup', label: '' };

  constructor(private readonly redactor: Redactor, readonly maxRequests: number, private readonly requestTimeoutMs: number) {}

  get count(): number {
    return this.exchanges.length;
  }

  /** Names the check and step that the following requests belong to. */
  at(check: string, label: string): void {
    this.current = { check, label };
  }

  numbersFor(check: string): number[] {
    return this.exchanges.filter((e) => e.check === check).map((e) => e.n);
  }

  /** A fetch for the SDK transports and raw probes alike. Streams are teed so the caller reads them live while the transcript keeps a copy. */
  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (this.exchanges.length >= this.maxRequests) throw new BudgetExceeded(this.maxRequests);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const headers = headerRecord(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const body = typeof init.body === 'string' ? init.body : undefined;
    const ex: Exchange = {
      n: this.exchanges.length + 1, check: this.current.check, label: this.current.label, at: new Date().toISOString(),
      request: { method, url: this.redactUrl(url), headers: this.redactor.headers(headers), ...(body !== undefined ? { body: this.cut(this.redactor.text(body)).text } : {}) },
    };
    this.exchanges.push(ex);
    const started = performance.now();
    // A probe's own signal (a stream held open on purpose) wins over the default per-request timeout.
    const signal = init.signal ?? AbortSignal.timeout(this.requestTimeoutMs);
    let res: Response;
    try {
      res = await fetch(input, { ...init, signal });
    } catch (err) {
      ex.ms = Math.round(performance.now() - started);
      ex.error = this.redactor.text((err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message);
      throw err;
    }
    ex.ms = Math.round(performance.now() - started);
    ex.response = { status: res.status, headers: this.redactor.headers(headerRecord(res.headers)) };
    if (!res.body) return res;
    const [mine, theirs] = res.body.tee();
    void this.keepBody(ex, mine);
    return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
  };

  private async keepBody(ex: Exchange, stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let truncated = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (text.length < BODY_LIMIT) text += decoder.decode(value, { stream: true });
        else truncated = true;
      }
    } catch {
      // The probe cancelled or the server cut the stream: keep what arrived.
    } finally {
      const cut = this.cut(this.redactor.text(text));
      if (ex.response) ex.response = { ...ex.response, body: cut.text, ...(truncated || cut.truncated ? { bodyTruncated: true } : {}) };
    }
  }

  private cut(s: string): { text: string; truncated: boolean } {
    return s.length > BODY_LIMIT ? { text: s.slice(0, BODY_LIMIT), truncated: true } : { text: s, truncated: false };
  }

  /** Query strings can carry credentials (BND-02 sends one on purpose): values are redacted, names kept. */
  private redactUrl(url: string): string {
    try {
      const u = new URL(url);
      for (const [k, v] of [...u.searchParams]) u.searchParams.set(k, /session/i.test(k) || /token|key|secret|auth/i.test(k) ? '[redacted]' : this.redactor.text(v));
      return u.href;
    } catch {
      // Not a URL: redacted as text instead, so nothing is recorded unredacted.
      return this.redactor.text(url);
    }
  }
}

function headerRecord(h: RequestInit["headers"] | undefined): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  if (Array.isArray(h)) return Object.fromEntries(h);
  return { ...(h as Record<string, string>) };
}
