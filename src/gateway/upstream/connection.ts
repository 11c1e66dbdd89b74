import { callCredential } from '../../delegation/call-credential.js';
import type { DownstreamCredential } from '../../delegation/types.js';
import { BehalfError } from '../../errors.js';
import {
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../../jsonrpc.js';
import { UpstreamSessionLost } from './http-transport.js';
import type { MessageOrigin, RelatedSink, UpstreamTransport } from './transport.js';

interface Pending {
  resolve: (r: JsonRpcResponse) => void;
  reject: (e: Error) => void;
  originalId: JsonRpcId;
  timer: NodeJS.Timeout;
  /** The client request's own stream, where the upstream's messages about this call go, ahead of its response. */
  related?: RelatedSink;
  progressToken?: unknown;
}

/** The token a client asked progress under (`_meta.progressToken` of its request). */
function requestedProgressToken(req: JsonRpcRequest): unknown {
  return (req.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta?.progressToken;
}

/**
 * One MCP connection to an upstream, for one principal. Requests the gateway
 * forwards get ids of the gateway's own, so nothing a client chooses can
 * collide with or answer another request; the caller gets the response back
 * under its original id. Messages the upstream starts (notifications, its
 * own requests) go to `onServerMessage`, with the stream of the client request
 * they belong to when that can be told: a message about a call must reach the
 * client before the call's response, so it travels on the same stream.
 */
export class UpstreamConnection {
  onServerMessage?: (msg: JsonRpcMessage, related?: RelatedSink) => void;
  onClose?: () => void;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  /** Re-initializes the upstream session after the upstream forgot it; set only for a fleet's shared sessions. */
  private recover?: () => Promise<void>;
  private recovering?: Promise<void>;

  constructor(
    private readonly transport: UpstreamTransport,
    private readonly timeoutMs: number,
  ) {
    transport.onmessage = (m, origin) => this.receive(m, origin);
    transport.isPending = (id) => this.pending.has(id);
    transport.onpause = (relatedTo, retryMs) => this.pending.get(relatedTo)?.related?.pause?.(retryMs);
    transport.onclose = () => this.handleClosed();
    transport.onerror = () => {
      /* per-message problems are surfaced through timeouts or close */
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get sessionId(): string | undefined {
    return this.transport.sessionId;
  }

  async start(): Promise<void> {
    try {
      await this.transport.start();
    } catch (err) {
      this.handleClosed();
      throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
    }
  }

  /**
   * Listens for what the upstream starts itself (its standing GET stream).
   * Only when someone will hear it — a client's GET or legacy SSE stream, or
   * the tool catalog waiting for list_changed — not for every session: an
   * idle open stream per session costs the upstream a connection each.
   */
  listen(): void {
    if (!this.closed) this.transport.openStandaloneStream?.();
  }

  setProtocolVersion(version: string): void {
    this.transport.setProtocolVersion?.(version);
  }

  /** Continues an upstream session opened by another instance of the fleet (Streamable HTTP only). */
  continueSession(sessionId: string | undefined, version: string | undefined): void {
    this.transport.continueSession?.(sessionId, version);
  }

  /**
   * From now on an upstream that answers 404 for its session is
   * re-initialized by `recover` (which starts from resetSession) and the call
   * is sent once more, instead of the connection closing.
   */
  recoverSessionsWith(recover: () => Promise<void>): void {
    if (!this.transport.continueSession) return;
    this.transport.recoverable = true;
    this.recover = recover;
  }

  resetSession(): void {
    this.transport.resetSession?.();
  }

  /** Leaves the connection without ending the upstream session: another instance of the fleet may go on with it. */
  async detach(): Promise<void> {
    if (this.closed) return;
    // Best effort, as in close: handleClosed below settles every pending call either way.
    await this.transport.close().catch(() => undefined);
    this.handleClosed();
  }

  /**
   * Forwards one request. `credential` is this call's downstream credential:
   * the HTTP transport's fetch reads it from `callCredential` (see there for
   * why it cannot be an argument of the transport's send). `related` is the
   * client request's stream, for what the upstream sends about this call.
   */
  request(
    req: JsonRpcRequest,
    opts: { credential?: DownstreamCredential; related?: RelatedSink } = {},
  ): Promise<JsonRpcResponse> {
    return callCredential.run(opts.credential, () => this.forwardRequest(req, opts.related));
  }

  private forwardRequest(req: JsonRpcRequest, related: RelatedSink | undefined): Promise<JsonRpcResponse> {
    if (this.closed) return Promise.reject(new BehalfError('upstream_unavailable'));
    const id = `bh-${this.nextId++}`;
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // Tell the upstream to stop: its late answer would be dropped anyway, and its work should not go on.
        // Best effort: the caller already has its timeout error, and a dead transport closes the connection on its own.
        void this.transport
          .send({
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId: id, reason: 'gateway timeout' },
          })
          .catch(() => undefined);
        reject(new BehalfError('upstream_timeout'));
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve,
        reject,
        originalId: req.id,
        timer,
        related,
        progressToken: requestedProgressToken(req),
      });
      this.sendRecovering({ ...req, id }).catch((err: unknown) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(
          err instanceof BehalfError ? err : new BehalfError('upstream_unavailable', undefined, {}, { cause: err }),
        );
      });
    });
  }

  /**
   * Initializes the upstream on the gateway's own behalf (stateless requests,
   * per-user connections of signed-context routes) and returns what it said.
   * `capabilities` are those the gateway can serve for its clients (none by default).
   */
  async initializeAsGateway(
    protocolVersion: string,
    capabilities: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const init = await this.request({
      jsonrpc: '2.0',
      id: 'gateway-init',
      method: 'initialize',
      params: { protocolVersion, capabilities, clientInfo: { name: 'behalf-gateway', version: '0.1.0' } },
    });
    if (!('result' in init)) throw new BehalfError('upstream_unavailable', 'upstream refused initialize');
    const v = init.result.protocolVersion;
    if (typeof v === 'string') this.setProtocolVersion(v);
    await this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return init.result;
  }

  /** Sends; an upstream that forgot the session is re-initialized once (one at a time) and the message sent again. */
  private async sendRecovering(msg: JsonRpcRequest): Promise<void> {
    try {
      await this.transport.send(msg);
    } catch (err) {
      if (!(err instanceof UpstreamSessionLost) || !this.recover) throw err;
      await this.recoverSession();
      await this.transport.send(msg);
    }
  }

  /**
   * Notifications, and responses to requests the upstream made of the client.
   * An upstream that forgot the session is re-initialized for a notification
   * as for a request, and the notification sent again: it means the same to
   * the new session (a cancellation of a request the old session took with it
   * names an id the new one ignores, as the specification lets it). A response
   * is not sent again: the request it answers was the forgotten session's.
   */
  async send(msg: JsonRpcMessage): Promise<void> {
    if (this.closed) throw new BehalfError('upstream_unavailable');
    try {
      await this.transport.send(msg);
    } catch (err) {
      // notifications/initialized is the re-initialization's own: a new session that is lost at once is not retried in a loop.
      const resendable = 'method' in msg && msg.method !== 'notifications/initialized';
      if (!(err instanceof UpstreamSessionLost) || !this.recover)
        throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
      if (!resendable)
        throw new BehalfError(
          'upstream_unavailable',
          'the upstream forgot the session this message belongs to; not sent to a new one',
          {},
          { cause: err },
        );
      await this.recoverSession();
      await this.transport.send(msg).catch((again: unknown) => {
        throw new BehalfError('upstream_unavailable', undefined, {}, { cause: again });
      });
    }
  }

  /** One re-initialization at a time, however many messages met the forgotten session. */
  private recoverSession(): Promise<void> {
    const recover = this.recover!;
    this.recovering ??= recover().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Closing is best effort: an upstream that cannot be told is being left either way, and the connection is marked closed below.
    await this.transport.terminateSession?.().catch(() => undefined);
    // Same: a transport that fails to close is dropped; handleClosed below settles every pending call.
    await this.transport.close().catch(() => undefined);
    this.handleClosed();
  }

  private receive(msg: JsonRpcMessage, origin?: MessageOrigin): void {
    if (isResponse(msg) && msg.id !== null) {
      const p = this.pending.get(String(msg.id));
      if (p && typeof msg.id === 'string') {
        clearTimeout(p.timer);
        this.pending.delete(msg.id);
        p.resolve({ ...msg, id: p.originalId });
        return;
      }
    }
    if (isResponse(msg)) return; // a response to nothing we asked: drop it
    if (isRequest(msg) || 'method' in msg) this.onServerMessage?.(msg, this.callOf(msg, origin)?.related);
  }

  /** The forwarded call an upstream message is about, if it can be told. */
  private callOf(msg: JsonRpcMessage, origin: MessageOrigin | undefined): Pending | undefined {
    if (origin?.relatedTo !== undefined) return this.pending.get(origin.relatedTo);
    if (origin?.standalone) return undefined;
    const token =
      'method' in msg && msg.method === 'notifications/progress'
        ? (msg.params as { progressToken?: unknown } | undefined)?.progressToken
        : undefined;
    if (token !== undefined) {
      for (const p of this.pending.values()) if (p.progressToken === token) return p;
      return undefined;
    }
    // A transport that cannot tell (stdio, legacy SSE): with exactly one call in flight, the message is about that call;
    // calls parked waiting for their client's input are not counted (their upstream is waiting for the answers).
    if (this.pending.size === 1) return this.pending.values().next().value;
    const active = [...this.pending.values()].filter((p) => !p.related?.awaitingClient);
    return active.length === 1 ? active[0] : undefined;
  }

  private handleClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new BehalfError('upstream_unavailable'));
    }
    this.pending.clear();
    this.onClose?.();
  }
}
