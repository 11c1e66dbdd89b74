/**
 * MCP servers for `behalf review` to be pointed at: one secure, and seven
 * each with exactly one boundary flaw (spec "The flawed servers"). They are
 * not behalf — plain official-SDK servers (McpServer + Streamable HTTP on
 * node:http, one transport per session) doing their own bearer check with
 * jose against the shared dev IdP (review-env.ts).
 *
 * The secure one: RFC 9728 metadata and Bearer challenges; foreign Origin →
 * 403; tokens only from the Authorization header; signature (RS256/PS256/
 * ES256), issuer, audience, exp/nbf, and a user in the token; per-user tools
 * and lists (review-crm.ts); sessions bound to the user who opened them; the
 * standing GET stream ends when the token that opened it expires; the
 * downstream is called with the user's token exchanged at the IdP (RFC 8693).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { InvalidToken, tokenVerifier, type TokenRules } from './review-auth.js';
import { crmServer, type Caller, type CrmRules, type Downstream } from './review-crm.js';
import { CRM_SERVER_CLIENT, type ReviewEnv } from './review-env.js';

export { startReviewEnv, CRM_SERVER_CLIENT, REVIEW_AGENT, SHORT_TTL_SECONDS, type ReviewEnv } from './review-env.js';
export { fingerprintOf, type Observer, type SeenEntry } from './review-observer.js';
export { reviewProfileFor, writeReviewProfile, type ReviewProfileInput } from './review-profile.js';
export { REVIEW_TOOLS, type ReviewTool } from './review-crm.js';

export const FLAWS = [
  'secure',
  'service-account-only',
  'alg-none',
  'any-audience',
  'unbound-sessions',
  'list-mismatch',
  'token-passthrough',
  'stream-outlives-token',
  'ignores-revocation',
] as const;
export type Flaw = (typeof FLAWS)[number];

/** The user list-mismatch shows a refused tool and hides a served one. */
export const MISMATCH_USER = 'alice';

interface Behaviour {
  token: TokenRules;
  crm: CrmRules;
  /** How the downstream is reached: the user's token exchanged, one service token for all, or the client's own bearer. */
  downstream: 'exchange' | 'service' | 'passthrough';
  boundSessions: boolean;
  streamEndsAtExpiry: boolean;
  /** POST /revoke?sub=… (the profile's revoke command) ends the user's sessions and refuses her tokens. */
  honoursRevocation: boolean;
}

const SECURE: Behaviour = {
  token: { algNone: false, audience: true, userRequired: true },
  crm: { perUserAuthz: true },
  downstream: 'exchange',
  boundSessions: true,
  streamEndsAtExpiry: true,
  honoursRevocation: true,
};

const BEHAVIOURS: Record<Flaw, Behaviour> = {
  secure: SECURE,
  // One flaw with three faces, as in the field: the server trusts "a valid token" and acts as itself.
  'service-account-only': {
    ...SECURE,
    token: { ...SECURE.token, userRequired: false },
    crm: { perUserAuthz: false },
    downstream: 'service',
  },
  'alg-none': { ...SECURE, token: { ...SECURE.token, algNone: true } },
  'any-audience': { ...SECURE, token: { ...SECURE.token, audience: false } },
  'unbound-sessions': { ...SECURE, boundSessions: false },
  'list-mismatch': { ...SECURE, crm: { perUserAuthz: true, mismatchFor: MISMATCH_USER } },
  'token-passthrough': { ...SECURE, downstream: 'passthrough' },
  'stream-outlives-token': { ...SECURE, streamEndsAtExpiry: false },
  // The revoke command succeeds, and nothing changes: the revoked user's session and stream live on.
  'ignores-revocation': { ...SECURE, honoursRevocation: false },
};

export interface ReviewServer {
  flaw: Flaw;
  /** The MCP endpoint and the resource its tokens must be for: http://127.0.0.1:PORT/mcp. */
  url: string;
  origin: string;
  /** RFC 9728 metadata (path form). */
  metadataUrl: string;
  /** Open MCP sessions (for tests that check cleanup). */
  sessionCount(): number;
  close(): Promise<void>;
}

type AuthedRequest = IncomingMessage & { auth?: AuthInfo };
const MAX_BODY = 1024 * 1024;

class BadBody extends Error {}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new BadBody('body too large'));
      else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text ? JSON.parse(text) : undefined);
      } catch {
        reject(new BadBody('body is not JSON'));
      }
    });
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function rpcError(res: ServerResponse, status: number, code: number, message: string): void {
  json(res, status, { jsonrpc: '2.0', id: null, error: { code, message } });
}

function downstreamFor(mode: Behaviour['downstream'], env: ReviewEnv): Downstream {
  const audience = env.observer.audience;
  let service: Promise<string> | undefined;
  const credential = async (caller: Caller): Promise<string> => {
    switch (mode) {
      case 'passthrough':
        return caller.token;
      case 'service':
        service ??= env.idp
          .clientCredentialsToken({ ...CRM_SERVER_CLIENT, resource: audience })
          .then((r) => r.accessToken);
        return service;
      case 'exchange':
        return (await env.idp.exchangeToken({ ...CRM_SERVER_CLIENT, subjectToken: caller.token, audience }))
          .accessToken;
    }
  };
  return async (caller, path) => {
    const res = await fetch(`${audience}/${path}`, {
      headers: { authorization: `Bearer ${await credential(caller)}` },
    });
    await res.text();
    if (!res.ok) throw new Error(`the downstream answered ${res.status}`);
  };
}

export async function startReviewServer(flaw: Flaw, env: ReviewEnv): Promise<ReviewServer> {
  const b = BEHAVIOURS[flaw];
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/mcp`;
  const metadataPath = '/.well-known/oauth-protected-resource/mcp';
  const metadataUrl = `${origin}${metadataPath}`;
  const metadata = {
    resource: url,
    authorization_servers: [env.idp.issuer],
    bearer_methods_supported: ['header'],
    scopes_supported: ['mcp:tools'],
  };
  const allowedOrigins = new Set([origin, `http://localhost:${port}`]);
  const verify = tokenVerifier({ issuer: env.idp.issuer, jwksUri: env.idp.jwksUri, resource: url, rules: b.token });
  const downstream = downstreamFor(b.downstream, env);
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; sub: string }>();
  const revoked = new Set<string>();

  /** RFC 6750 §3.1: no error code when no token came; invalid_token when one did and failed. */
  const challenge = (res: ServerResponse, invalid?: string): void => {
    const params = [
      `resource_metadata="${metadataUrl}"`,
      ...(invalid ? ['error="invalid_token"', `error_description="${invalid}"`] : []),
    ];
    json(
      res,
      401,
      { error: invalid ? 'invalid_token' : 'unauthorized', ...(invalid ? { error_description: invalid } : {}) },
      { 'www-authenticate': `Bearer ${params.join(', ')}` },
    );
  };

  /** The standing stream lives no longer than the token that opened it. */
  const endAtExpiry = (transport: StreamableHTTPServerTransport, res: ServerResponse, exp: number): void => {
    const timer = setTimeout(() => transport.closeStandaloneSSEStream(), exp * 1000 - Date.now());
    timer.unref();
    res.on('close', () => clearTimeout(timer));
  };

  async function handle(req: AuthedRequest, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', origin).pathname;
    if (req.method === 'GET' && (path === metadataPath || path === '/.well-known/oauth-protected-resource'))
      return json(res, 200, metadata);
    if (path === '/revoke' && req.method === 'POST') {
      const sub = new URL(req.url ?? '/', origin).searchParams.get('sub') ?? '';
      if (b.honoursRevocation) {
        revoked.add(sub);
        for (const s of sessions.values()) if (s.sub === sub) void s.transport.close();
      }
      return json(res, 200, { revoked: sub });
    }
    if (path !== '/mcp') return json(res, 404, { error: 'not found' });
    // A page of another origin must not drive this server through a user's browser, whatever it holds.
    const requestOrigin = req.headers.origin;
    if (requestOrigin !== undefined && !allowedOrigins.has(requestOrigin))
      return json(res, 403, { error: 'origin not allowed' });

    let body: unknown;
    try {
      body = req.method === 'POST' ? await readBody(req) : undefined;
    } catch (err) {
      if (err instanceof BadBody) return rpcError(res, 400, -32700, err.message);
      throw err;
    }
    // The header only: a token in the query string ends up in logs and Referer headers.
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return challenge(res);
    let caller: Caller;
    try {
      caller = await verify(token);
    } catch (err) {
      if (err instanceof InvalidToken) return challenge(res, err.message);
      throw err;
    }
    if (revoked.has(caller.sub)) return challenge(res, 'revoked');
    req.auth = { token, clientId: caller.sub, scopes: [], expiresAt: caller.exp, extra: { caller } };

    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const session = sessions.get(sid);
      if (!session) return rpcError(res, 404, -32001, 'Session not found');
      if (b.boundSessions && session.sub !== caller.sub)
        return rpcError(res, 403, -32003, 'forbidden: this session belongs to another user');
      if (req.method === 'GET' && b.streamEndsAtExpiry) endAtExpiry(session.transport, res, caller.exp);
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body))
      return rpcError(res, 400, -32000, 'Bad Request: no session; send initialize first');
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, sub: caller.sub });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await crmServer(b.crm, downstream).connect(transport);
    await transport.handleRequest(req, res, body);
  }

  http.on('request', (req: AuthedRequest, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      console.error(`review server ${flaw}: ${(err as Error).message}`);
      if (!res.headersSent) json(res, 500, { error: 'server error' });
      else res.end();
    });
  });

  return {
    flaw,
    url,
    origin,
    metadataUrl,
    sessionCount: () => sessions.size,
    async close() {
      await Promise.allSettled([...sessions.values()].map((s) => s.transport.close()));
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}
