import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { BehalfAuthInfo } from './caller.js';

/** What SDK v2's `createMcpHandler` returns, as far as the boundary needs it. */
export interface FetchHandler {
  fetch(request: Request, options?: { authInfo?: BehalfAuthInfo }): Promise<Response>;
}

/** The Node request as a web-standard Request (the body streamed, never buffered here). */
export function toWebRequest(req: IncomingMessage, origin: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(new URL(req.url ?? '/', origin), {
    method,
    headers,
    ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
  } as RequestInit);
}

/** Writes a web-standard Response to the Node response, streaming its body (SSE included). */
export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((v, k) => {
    headers[k] = k === 'set-cookie' ? [...((headers[k] as string[] | undefined) ?? []), v] : v;
  });
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const body = Readable.fromWeb(response.body as Parameters<typeof Readable.fromWeb>[0]);
  res.on('close', () => body.destroy());
  body.pipe(res);
}
