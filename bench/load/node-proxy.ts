/**
 * The floor of a Node.js proxy for this hop: node:http in front, an undici
 * Pool behind (what behalf's own upstream client uses), bodies streamed
 * through untouched, no checks at all. Run as its own process by the load
 * bench, so its CPU per call shows what Node itself costs per proxied call on
 * this machine, below which no gateway written on it can go.
 *
 *   node dist/bench/load/node-proxy.js <upstream URL>   (prints "node proxy listening on port N")
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = new URL(process.argv[2]!);
const pool = new Pool(upstream.origin, { connections: 128, pipelining: 1 });
/** Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own, not passed on. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'te', 'trailer']);

const server = createServer((req, res) => {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = String(v);
  pool
    .request({
      path: upstream.pathname,
      method: req.method as 'POST',
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
    })
    .then(({ statusCode, headers: h, body }) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(statusCode, out);
      body.pipe(res);
    })
    .catch((err: unknown) => {
      // A benchmark peer: the load generator counts the 502 as an error.
      res.writeHead(502).end(String(err));
    });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  console.log(`node proxy listening on port ${typeof addr === 'object' && addr ? addr.port : '?'}`);
});
