import type { TargetTransport } from './context.js';

/**
 * Whether anything answers at the target at all, before any check runs: an
 * unreachable target is a usage problem (exit 2), not a failed check. Any
 * HTTP answer counts, a 401 included.
 */
export async function checkReachable(target: URL, transport: TargetTransport, timeoutMs = 5000): Promise<string | undefined> {
  try {
    const res = await fetch(target, {
      method: transport === 'sse' ? 'GET' : 'POST',
      headers: transport === 'sse' ? { accept: 'text/event-stream' } : { accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      ...(transport === 'sse' ? {} : { body: '{"jsonrpc":"2.0","id":0,"method":"ping"}' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Any answer was enough; what the body would have said is not needed.
    await res.body?.cancel().catch(() => {});
    return undefined;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : cause ?? (err as Error).message;
  }
}
