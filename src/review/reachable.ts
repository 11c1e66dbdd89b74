import type { TargetTransport } from './context.js';
import { initializeBody } from './mcp.js';

/** Why the review stops before its first check: nothing answers, or what answers is not an MCP endpoint. */
export interface TargetProblem {
  kind: 'unreachable' | 'not-mcp';
  reason: string;
}

const MAX_SNIFF_BYTES = 64 * 1024;

/**
 * One request before any check: an unauthenticated `initialize` (Streamable
 * HTTP) or the GET stream (legacy SSE). An unreachable target and one that is
 * plainly not an MCP endpoint (404, an HTML page, a body with no JSON-RPC
 * answer) end the review at once (exit 2), instead of forty probes whose every
 * refusal would be read as a boundary holding. A 401/403 is what a protected
 * endpoint says, so it passes.
 */
export async function checkReachable(target: URL, transport: TargetTransport, timeoutMs = 5000): Promise<TargetProblem | undefined> {
  let res: Response;
  try {
    res = await fetch(target, {
      method: transport === 'sse' ? 'GET' : 'POST',
      headers: transport === 'sse' ? { accept: 'text/event-stream' } : { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-06-18' },
      ...(transport === 'sse' ? {} : { body: JSON.stringify(initializeBody(0)) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { kind: 'unreachable', reason: (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause ?? (err as Error).message) };
  }
  const type = (res.headers.get('content-type') ?? '').toLowerCase();
  const status = `HTTP ${res.status}${type ? ` (${type.split(';')[0]})` : ''}`;
  if (res.status === 401 || res.status === 403) return release(res, undefined);
  if (res.status === 404 || res.status === 410) return release(res, notMcp(`${status}: nothing is served at ${target.pathname}; check the path (behalf serves /mcp/<upstream>)`));
  if (type.includes('text/html')) return release(res, notMcp(`${status}: the target answers with a web page, not JSON-RPC`));
  if (transport === 'sse') {
    if (res.ok && type.includes('text/event-stream')) return release(res, undefined);
    return release(res, notMcp(`${status}: a legacy SSE endpoint answers GET with text/event-stream`));
  }
  const text = await sniff(res);
  if (/"jsonrpc"\s*:\s*"2\.0"/.test(text)) return undefined;
  return notMcp(`${status}: no JSON-RPC answer to initialize${text.trim() ? '' : ' (empty body)'}`);
}

function notMcp(reason: string): TargetProblem {
  return { kind: 'not-mcp', reason };
}

/** Any answer was enough for these cases; the body is not needed, so the connection is released. */
async function release(res: Response, problem: TargetProblem | undefined): Promise<TargetProblem | undefined> {
  // The verdict is already made: a body that fails to cancel changes nothing.
  await res.body?.cancel().catch(() => {});
  return problem;
}

/** The first part of the body (an SSE answer may stay open): enough to see a JSON-RPC message, never the whole stream. */
async function sniff(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  // An endpoint that opens a stream and says nothing: after 3 s what arrived is judged (a cancel error changes nothing).
  const deadline = setTimeout(() => void reader.cancel().catch(() => {}), 3000);
  try {
    while (text.length < MAX_SNIFF_BYTES && !/"jsonrpc"\s*:\s*"2\.0"/.test(text)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // Cancelled at the deadline or the peer closed: judge what arrived.
  } finally {
    clearTimeout(deadline);
    // Done reading: a stream that fails to cancel changes nothing about what arrived.
    await reader.cancel().catch(() => {});
  }
  return text;
}
