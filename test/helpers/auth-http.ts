import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { Gateway } from '../../src/gateway/server.js';
import { jsonOrUndefined, readResponseBody } from './raw-http.js';

/** A fresh 2025-11-25 initialize request, as the SDK 1.x client sends it. */
export const INIT_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } },
});

export const JSON_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
} as const;

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json: unknown;
}

/** node:http response headers as a fetch `Headers`, repeated values kept. */
export function toHeaders(raw: NodeJS.Dict<string | string[]>): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
  }
  return h;
}

/** One raw HTTP request with fetch; the body is read completely (401s are small JSON bodies). */
export async function rawRequest(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  const res = await fetch(url, { method: o.method ?? 'GET', headers: o.headers, body: o.body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: jsonOrUndefined(text) };
}

/** POSTs an initialize with the given credential headers. */
export function initialize(url: string, headers: Record<string, string>): Promise<RawResponse> {
  return rawRequest(url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: INIT_BODY });
}

/**
 * A positive control: initialize succeeds (200, a session id, the upstream's
 * serverInfo), then the session is ended again so no stdio child lingers.
 */
export async function assertInitializes(url: string, headers: Record<string, string>): Promise<void> {
  const res = await initialize(url, headers);
  assert.equal(res.status, 200, `initialize should succeed, got ${res.status}: ${res.text}`);
  const sessionId = res.headers.get('mcp-session-id');
  assert.ok(sessionId, 'a session id is issued');
  const body = res.json as { result?: { serverInfo?: { name?: string } } };
  assert.equal(typeof body.result?.serverInfo?.name, 'string');
  const del = await rawRequest(url, { method: 'DELETE', headers: { ...headers, 'mcp-session-id': sessionId } });
  assert.ok(del.status === 200 || del.status === 204, `DELETE of own session: ${del.status}`);
}

/** Parses `Bearer k="v", k2="v2"` into its scheme and parameters. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } {
  assert.ok(header, 'a WWW-Authenticate header is present');
  const m = /^(\S+)\s*(.*)$/.exec(header);
  assert.ok(m);
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([a-z_]+)="([^"]*)"/g)) params[p[1]!] = p[2]!;
  return { scheme: m[1]!, params };
}

export interface ChallengeExpectation {
  status?: 401 | 403;
  /** `undefined`: no credential was presented, so no error param (RFC 6750 §3.1). */
  error?: 'invalid_token' | 'insufficient_scope';
  metadataUrl: string;
  /** Expected scope param; `undefined` means none is sent. */
  scope?: string;
  /** Expected fixed JSON-RPC error message. */
  message?: string | RegExp;
}

/**
 * Asserts a well-formed refusal: status, a Bearer challenge naming the RFC
 * 9728 document, the error param only when expected, and a JSON-RPC error
 * body with a fixed message.
 */
export function assertChallenge(res: RawResponse, e: ChallengeExpectation): void {
  assert.equal(res.status, e.status ?? 401, `status (body ${res.text})`);
  const { scheme, params } = parseChallenge(res.headers.get('www-authenticate'));
  assert.equal(scheme, 'Bearer');
  assert.equal(params.resource_metadata, e.metadataUrl);
  assert.equal(params.error, e.error, `error param of ${res.headers.get('www-authenticate')}`);
  assert.equal(params.scope, e.scope);
  // The description is the same fixed text as the body: why a credential failed stays in the audit log.
  if (e.error === 'invalid_token' && typeof e.message === 'string') assert.equal(params.error_description, e.message);
  const body = res.json as {
    jsonrpc?: string;
    id?: unknown;
    error?: { code?: number; message?: string };
    result?: unknown;
  };
  assert.equal(body?.jsonrpc, '2.0');
  assert.equal(body.id, null);
  assert.equal(typeof body.error?.code, 'number');
  assert.equal(body.result, undefined);
  if (e.message instanceof RegExp) assert.match(body.error!.message!, e.message);
  else if (e.message !== undefined) assert.equal(body.error!.message, e.message);
}

/**
 * Asserts that no secret (API key, token, or a recognisable part of one)
 * appears in the response body or any response header.
 */
export function assertNoSecrets(res: RawResponse, secrets: ReadonlyArray<string | undefined>): void {
  const headerText = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
  for (const s of secrets) {
    if (!s) continue;
    // A token's signature part alone would also be a leak; check the whole and each long piece.
    const pieces = [s, ...s.split('.').filter((p) => p.length >= 16)];
    for (const p of pieces) {
      assert.ok(!res.text.includes(p), 'a secret appears in the response body');
      assert.ok(!headerText.includes(p), 'a secret appears in a response header');
    }
  }
}

/** The RFC 9728 metadata URL the gateway advertises for an upstream. */
export function metadataUrlOf(gw: Gateway, upstream = 'crm'): string {
  return gw.runtime.routes.get(upstream)!.metadataUrl;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A raw node:http request whose header values may be arrays: each value is
 * sent as its own header line (fetch would merge them into one).
 */
export function httpRequestLines(
  url: string,
  o: { method?: string; headers: Record<string, string | string[]>; body?: string },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: o.method ?? 'GET' }, (res) => {
      readResponseBody(res).then(
        ({ text, json }) => resolve({ status: res.statusCode ?? 0, headers: toHeaders(res.headers), text, json }),
        reject,
      );
    });
    for (const [k, v] of Object.entries(o.headers)) req.setHeader(k, v);
    req.setHeader('connection', 'close');
    req.on('error', reject);
    req.end(o.body);
  });
}
