import { callCredential } from '../../delegation/call-credential.js';
import type { DownstreamCredential } from '../../delegation/types.js';
import { isRequest, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../../jsonrpc.js';
import {
  CLIENT_CAPABILITIES_META_KEY,
  MCP_NAME_FIELD,
  PROTOCOL_VERSION_META_KEY,
  STATELESS_VERSION,
} from '../protocol.js';
import type { ConnectionCredential } from '../upstream/factory.js';
import type { HttpPools } from '../upstream/http-pools.js';
import type { UpstreamTransport } from '../upstream/transport.js';
import { encodeHeaderValue } from './header-values.js';
import { messagesOf } from './message-stream.js';

/** Where a stateless upstream is, the static headers its configuration adds, and the gateway's connections to it. */
export interface StatelessTarget {
  url: URL;
  headers: Record<string, string>;
  pools: HttpPools;
}

/** The upstream answered, but not with a JSON-RPC answer to the request: it does not speak this revision (or failed). */
export class UnexpectedAnswer extends Error {
  override name = 'UnexpectedAnswer';
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A request the gateway makes itself (a tool catalogue, the discovery probe) carries the `_meta` every stateless request must. */
function withRequestMeta(req: JsonRpcRequest): JsonRpcRequest {
  const params = obj(req.params) ?? {};
  const meta = obj(params._meta) ?? {};
  if (meta[PROTOCOL_VERSION_META_KEY] !== undefined) return req;
  return {
    ...req,
    params: {
      ...params,
      _meta: {
        ...meta,
        [PROTOCOL_VERSION_META_KEY]: STATELESS_VERSION,
        [CLIENT_CAPABILITIES_META_KEY]: {},
        'io.modelcontextprotocol/clientInfo': { name: 'behalf-gateway', version: '0.1.0' },
      },
    },
  };
}

/**
 * The headers of one stateless request to an upstream: the revision, the
 * mirrored method and name (encoded per SEP-2243), the client's `Mcp-Param-*`
 * headers (an intermediary forwards them), the route's static headers, and
 * this call's downstream credential — never the client's own.
 */
async function headersFor(
  target: StatelessTarget,
  req: JsonRpcRequest,
  params: Record<string, string>,
  connection: ConnectionCredential | undefined,
  credential: DownstreamCredential | undefined,
): Promise<Record<string, string>> {
  const field = MCP_NAME_FIELD[req.method];
  const name = field ? obj(req.params)?.[field] : undefined;
  const cred = credential ?? callCredential.getStore() ?? (connection ? await connection() : undefined);
  // Lower-case names throughout, so a later source replaces an earlier one's value rather than doubling it.
  const lower = (h: Record<string, string>) =>
    Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': STATELESS_VERSION,
    'mcp-method': req.method,
    ...(typeof name === 'string' ? { 'mcp-name': encodeHeaderValue(name) } : {}),
    ...lower(params),
    ...lower(target.headers),
    ...lower(cred?.headers ?? {}),
  };
}

/** Posts one stateless request and yields the messages of its answer, JSON or a stream, as they arrive. */
export async function* postStateless(
  target: StatelessTarget,
  req: JsonRpcRequest,
  opts: {
    params?: Record<string, string>;
    connection?: ConnectionCredential;
    /** This call's credential, when it is not carried by `callCredential` (a stream read outside the call's context). */
    credential?: DownstreamCredential;
    signal?: AbortSignal;
  },
): AsyncGenerator<JsonRpcMessage> {
  const sent = withRequestMeta(req);
  const res = await target.pools.for(target.url.origin).request({
    path: target.url.pathname + target.url.search,
    method: 'POST',
    headers: await headersFor(target, sent, opts.params ?? {}, opts.connection, opts.credential),
    body: JSON.stringify(sent),
    signal: opts.signal,
  });
  const type = String(res.headers['content-type'] ?? '');
  const eventStream = /text\/event-stream/i.test(type);
  if (!eventStream && !/json/i.test(type)) {
    await res.body.dump();
    throw new UnexpectedAnswer(`upstream answered HTTP ${res.statusCode} (${type || 'no content type'})`);
  }
  yield* messagesOf(res.body, eventStream);
}

function isAnswer(m: JsonRpcMessage): boolean {
  return !('method' in m) && ('result' in m || 'error' in m);
}

/**
 * An upstream transport for the stateless revision: each request is its own
 * POST, and whatever its answer carries is about that request. Any answer on
 * the exchange answers it (an error an upstream could not tie to an id comes
 * back with `id: null`). Closing the stream is how 2026-07-28 cancels, so a
 * cancellation aborts the request's POST.
 */
export class StatelessHttpTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: () => void;
  onerror?: (err: Error) => void;
  private readonly inFlight = new Map<string, AbortController>();
  private closed = false;

  constructor(
    private readonly target: StatelessTarget,
    private readonly connection?: ConnectionCredential,
    /** The client's `Mcp-Param-*` headers, forwarded as an intermediary must. */
    private readonly params: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {}

  async send(msg: JsonRpcMessage): Promise<void> {
    if ('method' in msg && msg.method === 'notifications/cancelled') {
      const id = obj(msg.params)?.requestId;
      this.inFlight.get(String(id))?.abort();
      return;
    }
    // 2026-07-28 defines no client notifications or responses over HTTP: nothing else is sent.
    if (!isRequest(msg)) return;
    const abort = new AbortController();
    const key = String(msg.id);
    this.inFlight.set(key, abort);
    try {
      await this.relay(msg, abort.signal);
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async relay(req: JsonRpcRequest, signal: AbortSignal): Promise<void> {
    const origin = { relatedTo: String(req.id) };
    for await (const m of postStateless(this.target, req, {
      params: this.params,
      connection: this.connection,
      signal,
    })) {
      if (isAnswer(m)) {
        this.onmessage?.({ ...m, id: req.id as JsonRpcId } as JsonRpcMessage, origin);
        return;
      }
      this.onmessage?.(m, origin);
    }
    throw new UnexpectedAnswer('upstream ended its answer without a response');
  }

  /** A `subscriptions/listen` stream: every message of its answer as it comes, until either side ends it. */
  listen(req: JsonRpcRequest, credential: DownstreamCredential | undefined, signal: AbortSignal) {
    return postStateless(this.target, req, { params: this.params, connection: this.connection, credential, signal });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.inFlight.values()) a.abort();
    this.onclose?.();
  }
}
