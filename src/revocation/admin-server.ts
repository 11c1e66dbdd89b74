import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import { describeError } from '../errors.js';
import { apiKeyRefusal, findApiKey, type ApiKeyEntry } from '../identity/api-keys.js';
import { sessionFingerprint } from '../state/sessions.js';
import { KINDS } from './entry.js';
import type { RevocationService } from './service.js';
import { SetRefused, type SetReceiver } from './shared-signals.js';

const MAX_BODY = 16 * 1024;

const AdminRequest = z
  .object({
    kind: z.enum(KINDS).exclude(['signing-key']),
    value: z.string().min(1).max(500),
    issuer: z.string().min(1).max(500).optional(),
    reason: z.string().max(500).optional(),
    /** Who is behind the admin key (the CLI sends the OS user): recorded next to the key id. */
    by: z.string().max(100).optional(),
  })
  .strict();

export interface AdminServerOptions {
  host: string;
  port: number;
  /** API keys of this client (key store) authenticate admin calls; agents' keys never do. */
  adminClient: string;
  apiKeys: () => readonly ApiKeyEntry[];
  service: RevocationService;
  receiver?: SetReceiver;
  audit: AuditLog;
  log: (line: string) => void;
}

/**
 * The admin endpoint, on a port of its own and off unless configured
 * (docs/revocation.md): `POST /revocations` and `GET /revocations`, with an
 * admin API key (`Authorization: Bearer …`) of the configured admin client;
 * and the Shared Signals push receiver `POST /ssf/events` (RFC 8935), whose
 * SETs authenticate themselves by their signature. Every refusal of a
 * credential or a SET is audited.
 */
export async function startAdminServer(o: AdminServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    handle(o, req, res).catch((err: unknown) => {
      o.log(`admin endpoint: ${describeError(err)}`);
      if (!res.headersSent) send(res, 500, { error: 'internal' });
      else res.end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function handle(o: AdminServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://admin.invalid').pathname;
  if (path === '/ssf/events' && o.receiver) {
    if (req.method !== 'POST') return send(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
    return receiveSet(o, o.receiver, req, res);
  }
  if (path !== '/revocations') return send(res, 404, { error: 'not_found' });
  if (req.method !== 'POST' && req.method !== 'GET')
    return send(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, POST' });
  const keyId = adminKeyOf(o, req);
  if (!keyId) return send(res, 401, { error: 'admin credential required or invalid' });
  if (req.method === 'GET') return send(res, 200, { revocations: o.service.list() });
  const parsed = AdminRequest.safeParse(await readJson(req));
  if (!parsed.success)
    return send(res, 400, { error: 'invalid revocation', issues: parsed.error.issues.map((i) => i.message) });
  const a = parsed.data;
  // Sessions are known by fingerprint (audit records show it); a session id given whole is turned into one.
  const value = a.kind === 'session' && !/^[0-9a-f]{16}$/.test(a.value) ? sessionFingerprint(a.value) : a.value;
  const revocation = await o.service.revoke({
    kind: a.kind,
    value,
    issuer: a.issuer,
    reason: a.reason,
    actor: `admin key ${keyId}${a.by ? ` (${a.by})` : ''}`,
    source: 'admin',
  });
  send(res, 201, { revocation });
}

/** The admin key's id, or undefined (audited) when the credential is missing, unknown, not an admin's, or no longer valid. */
function adminKeyOf(o: AdminServerOptions, req: IncomingMessage): string | undefined {
  const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
  const entry = m ? findApiKey(o.apiKeys(), m[1]!) : undefined;
  const why = !m
    ? 'no admin credential'
    : !entry
      ? 'unknown key'
      : entry.clientId !== o.adminClient
        ? `key ${entry.keyId} of client ${entry.clientId} is not an admin key`
        : apiKeyRefusal(entry, Date.now());
  if (!why) return entry!.keyId;
  o.audit.tryAppend({
    ts: Date.now(),
    kind: 'auth-failure',
    route: 'admin',
    reason: `admin endpoint: ${why}`,
    ...(entry ? { clientId: entry.clientId, credentialId: entry.keyId } : {}),
  });
  return undefined;
}

async function receiveSet(o: AdminServerOptions, receiver: SetReceiver, req: IncomingMessage, res: ServerResponse) {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = (await readBody(req)).trim();
  try {
    if (type !== 'application/secevent+jwt')
      throw new SetRefused('invalid_request', 'content type must be application/secevent+jwt');
    for (const r of await receiver.revocationsOf(body)) await o.service.revoke(r);
    res.writeHead(202).end();
  } catch (err) {
    if (!(err instanceof SetRefused)) throw err;
    o.audit.tryAppend({
      ts: Date.now(),
      kind: 'auth-failure',
      route: 'ssf',
      reason: `SET refused: ${err.err}: ${err.message}`,
    });
    send(res, 400, { err: err.err, description: err.message });
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new SetRefused('invalid_request', 'body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse(await readBody(req)) as unknown;
  } catch {
    // Not JSON, or too large: the schema check refuses it as an invalid revocation; the text is never echoed.
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}
