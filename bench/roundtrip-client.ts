/** The round-trip bench's client side: one MCP session over Streamable HTTP, and the server's CPU from /proc. */
import { readFileSync } from 'node:fs';

/** utime + stime of a process in milliseconds, from /proc (Linux). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

export async function post(
  url: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<{ status: number; session?: string; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const data =
    text.startsWith('event:') || text.startsWith('data:')
      ? JSON.parse(
          text
            .split('\n')
            .find((l) => l.startsWith('data:'))!
            .slice(5),
        )
      : text
        ? JSON.parse(text)
        : undefined;
  return { status: res.status, session: res.headers.get('mcp-session-id') ?? undefined, json: data };
}

export async function openSession(url: string, headers: Record<string, string>): Promise<Record<string, string>> {
  const init = await post(url, headers, {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '0' } },
  });
  if (init.status !== 200 || !init.session) throw new Error(`initialize failed: ${init.status}`);
  const h = { ...headers, 'mcp-session-id': init.session, 'mcp-protocol-version': '2025-11-25' };
  await post(url, h, { jsonrpc: '2.0', method: 'notifications/initialized' });
  return h;
}

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
