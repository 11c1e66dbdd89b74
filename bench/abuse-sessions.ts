/**
 * One user trying to lock the others out (issue 11, "fair sessions"): with
 * `sessions.maxSessions` small (100 by default), alice opens as many sessions
 * as she can through the demo agent, then bob tries both routes. Prints what
 * each got and how fast one client opens sessions (and is refused).
 *
 *   node dist/bench/abuse-sessions.js                                  # this tree's gateway
 *   BEHALF_ROOT=/work/wt-base/dist node dist/bench/abuse-sessions.js   # another build's (before/after)
 *
 * BENCH_MAX_SESSIONS (100) and BENCH_ATTEMPTS (200) size it. The config uses
 * only keys every build knows (sessions.maxSessions), so both builds run the
 * same file; the quotas are the defaults of whichever build runs it. The
 * gateway and the upstream run as their own processes.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSpawnedGateway } from '../test/helpers/spawned-gateway.js';

const MAX_SESSIONS = Number(process.env.BENCH_MAX_SESSIONS ?? 100);
const ATTEMPTS = Number(process.env.BENCH_ATTEMPTS ?? 200);
const WARMUP = 20;
const here = fileURLToPath(new URL('..', import.meta.url));
const gatewayRoot = resolve(process.env.BEHALF_ROOT ?? here);

interface Answer {
  status: number;
  ms: number;
  session?: string;
  retryAfter?: string;
  error?: string;
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'abuse-bench', version: '0' } },
};

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Answer> {
  const t = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const ms = performance.now() - t;
  const data = /^\s*\{/.test(text) ? (JSON.parse(text) as { error?: { message?: string } }) : undefined;
  return {
    status: res.status,
    ms,
    session: res.headers.get('mcp-session-id') ?? undefined,
    retryAfter: res.headers.get('retry-after') ?? undefined,
    error: data?.error?.message,
  };
}

/** Status of opening a legacy SSE stream: the stream itself is closed as soon as its status is known. */
async function legacyStatus(url: string, headers: Record<string, string>): Promise<Answer> {
  const t = performance.now();
  const ctrl = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ctrl.signal });
  const ms = performance.now() - t;
  const error = res.status === 200 ? undefined : await res.text();
  ctrl.abort();
  return { status: res.status, ms, retryAfter: res.headers.get('retry-after') ?? undefined, error };
}

function tally(answers: Answer[]): string {
  const by = new Map<string, number>();
  for (const a of answers) {
    const k = a.status === 200 ? '200' : `${a.status} ${a.error ?? ''}`.trim();
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return [...by].map(([k, n]) => `${n} × ${k}`).join('; ');
}

async function main(): Promise<void> {
  const gw = await startSpawnedGateway({ root: gatewayRoot, config: { sessions: { maxSessions: MAX_SESSIONS } } });
  const { url } = gw;
  const sseUrl = `${url}/sse`;
  try {
    const headersOf = gw.headersFor;
    const alice = await headersOf('alice');
    const bob = await headersOf('bob');
    const carol = await headersOf('carol');
    // Warm-up, by a well-behaved client that ends what it opens: the measured opens are not the first ones.
    for (let i = 0; i < WARMUP; i++) {
      const s = await post(url, carol, INITIALIZE);
      if (!s.session) throw new Error(`warm-up initialize failed: ${s.status} ${s.error}`);
      await fetch(url, { method: 'DELETE', headers: { ...carol, 'mcp-session-id': s.session } });
    }

    const answers: Answer[] = [];
    const t0 = performance.now();
    for (let i = 0; i < ATTEMPTS; i++) answers.push(await post(url, alice, INITIALIZE));
    const elapsed = performance.now() - t0;
    const opened = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    const firstRefusal = answers.findIndex((a) => a.status !== 200);
    const openMs = opened.reduce((s, a) => s + a.ms, 0);
    const refuseMs = refused.reduce((s, a) => s + a.ms, 0);

    const bobInit = await post(url, bob, INITIALIZE);
    const bobCall = bobInit.session
      ? await post(
          url,
          { ...bob, 'mcp-session-id': bobInit.session, 'mcp-protocol-version': '2025-11-25' },
          {
            jsonrpc: '2.0',
            id: 1,
            method: 'tools/call',
            params: { name: 'get_customer', arguments: { customer_id: 'c-200' } },
          },
        )
      : undefined;
    const bobSse = await legacyStatus(sseUrl, bob);

    console.log(`gateway: ${gatewayRoot} (sessions.maxSessions ${MAX_SESSIONS}), Node ${process.version}`);
    console.log(`alice, ${ATTEMPTS} sequential initialize through one client: ${tally(answers)}`);
    console.log(
      `  first refusal at attempt ${firstRefusal < 0 ? '-' : firstRefusal + 1}: ${
        firstRefusal < 0
          ? '-'
          : `${answers[firstRefusal]!.status} "${answers[firstRefusal]!.error}" Retry-After: ${answers[firstRefusal]!.retryAfter ?? '(none)'}`
      }`,
    );
    console.log(
      `  sessions opened: ${opened.length}, ${opened.length ? (openMs / opened.length).toFixed(2) : '-'} ms each (${
        opened.length ? ((opened.length / openMs) * 1000).toFixed(0) : '-'
      }/s); refused: ${refused.length}, ${refused.length ? (refuseMs / refused.length).toFixed(2) : '-'} ms each; all ${ATTEMPTS} in ${(elapsed / 1000).toFixed(2)} s`,
    );
    console.log(
      `bob, streamable initialize: ${bobInit.status}${bobInit.error ? ` "${bobInit.error}"` : ''}${
        bobCall ? `; tools/call: ${bobCall.status}${bobCall.error ? ` "${bobCall.error}"` : ''}` : ''
      }`,
    );
    console.log(`bob, legacy SSE GET: ${bobSse.status}${bobSse.error ? ` ${bobSse.error}` : ''}`);
  } finally {
    await gw.close();
  }
}

await main();
