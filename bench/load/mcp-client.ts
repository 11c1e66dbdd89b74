/**
 * The few MCP requests the bench makes outside the load itself: opening a
 * session (initialize + notifications/initialized), ending it (DELETE), and
 * holding a GET stream open, on kept-alive connections of the caller's agent.
 */
import { Agent, request, type ClientRequest } from 'node:http';
import { sendOn, type Answer } from '../../test/helpers/spawned-gateway.js';

export const PROTOCOL_VERSION = '2025-11-25';

/** The bench waits longer than a test: under its own load an answer can take a while. */
function send(
  agent: Agent,
  url: string,
  method: 'POST' | 'DELETE',
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  return sendOn(agent, url, method, headers, body, 60_000);
}

/** Initializes refused and tried again, with why: reported, since on a quiet machine there should be none. */
export const refusedInitializes: string[] = [];
const ATTEMPTS = 6;

/** Opens a session; resolves with the headers every later request of it carries. */
export async function openSession(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
): Promise<Record<string, string>> {
  let init: Answer | undefined;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    init = await send(agent, url, 'POST', headers, {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench-load', version: '0' } },
    });
    if (init.status === 200 && typeof init.headers['mcp-session-id'] === 'string') break;
    refusedInitializes.push(`${url}: HTTP ${init.status} ${init.text.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 250 * attempt));
  }
  const sid = init!.headers['mcp-session-id'];
  if (init!.status !== 200 || typeof sid !== 'string')
    throw new Error(`initialize at ${url}: HTTP ${init!.status} ${init!.text.slice(0, 300)}`);
  const session = { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL_VERSION };
  const ack = await send(agent, url, 'POST', session, { jsonrpc: '2.0', method: 'notifications/initialized' });
  if (ack.status !== 202 && ack.status !== 200) throw new Error(`initialized at ${url}: HTTP ${ack.status}`);
  return session;
}

/** Opens `n` sessions, `parallel` at a time, into `out` (which keeps those opened when a later one fails). */
export async function openSessions(
  url: string,
  headers: Record<string, string>,
  n: number,
  parallel = 16,
  out: Record<string, string>[] = [],
): Promise<Record<string, string>[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(parallel, n) }, async () => {
        while (next < n) {
          next++;
          out.push(await openSession(agent, url, headers));
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return out;
}

/** Ends the sessions (DELETE), so a stdio upstream's children and the quotas are freed for the next phase. */
export async function closeSessions(url: string, sessions: Record<string, string>[]): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  try {
    // A session the target already ended (or one it cannot end) costs nothing more: the phase is over either way.
    await Promise.all(sessions.map((h) => send(agent, url, 'DELETE', h).catch(() => undefined)));
  } finally {
    agent.destroy();
  }
}

/** A GET stream held open (one socket each); resolves once its headers arrived. */
export function openStream(
  url: string,
  headers: Record<string, string>,
): Promise<{ req: ClientRequest; status: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'GET',
        agent: false,
        headers: { accept: 'text/event-stream', ...headers },
      },
      (res) => {
        res.on('data', () => undefined);
        // The stream is torn down by the bench itself (req.destroy): its end is no error.
        res.on('error', () => undefined);
        // Held open on purpose: an idle stream must not time out on the bench's side.
        req.setTimeout(0);
        resolve({ req, status: res.statusCode ?? 0 });
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('GET stream: no headers in 60 s')));
    req.on('error', reject);
    req.end();
  });
}
