import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
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

interface Pending {
  resolve: (r: JsonRpcResponse) => void;
  reject: (e: Error) => void;
  originalId: JsonRpcId;
  timer: NodeJS.Timeout;
}

/**
 * One MCP connection to an upstream, for one principal. Requests the gateway
 * forwards get ids of the gateway's own, so nothing a client chooses can
 * collide with or answer another request; the caller gets the response back
 * under its original id. Messages the upstream starts (notifications, its
 * own requests) go to `onServerMessage`.
 */
export class UpstreamConnection {
  onServerMessage?: (msg: JsonRpcMessage) => void;
  onClose?: () => void;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly timeoutMs: number,
  ) {
    transport.onmessage = (m) => this.receive(m as JsonRpcMessage);
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

  setProtocolVersion(version: string): void {
    this.transport.setProtocolVersion?.(version);
  }

  /**
   * Forwards one request. `credential` is this call's downstream credential:
   * the HTTP transport's fetch reads it from `callCredential` (see there for
   * why it cannot be an argument of the SDK's send).
   */
  request(req: JsonRpcRequest, opts: { credential?: DownstreamCredential } = {}): Promise<JsonRpcResponse> {
    return callCredential.run(opts.credential, () => this.forwardRequest(req));
  }

  private forwardRequest(req: JsonRpcRequest): Promise<JsonRpcResponse> {
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
      this.pending.set(id, { resolve, reject, originalId: req.id, timer });
      this.transport.send({ ...req, id } as JSONRPCMessage).catch((err: unknown) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new BehalfError('upstream_unavailable', undefined, {}, { cause: err }));
      });
    });
  }

  /**
   * Initializes the upstream on the gateway's own behalf (stateless requests,
   * per-user connections of signed-context routes) and returns what it said.
   */
  async initializeAsGateway(protocolVersion: string): Promise<Record<string, unknown>> {
    const init = await this.request({
      jsonrpc: '2.0',
      id: 'gateway-init',
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'behalf-gateway', version: '0.1.0' } },
    });
    if (!('result' in init)) throw new BehalfError('upstream_unavailable', 'upstream refused initialize');
    const v = init.result.protocolVersion;
    if (typeof v === 'string') this.setProtocolVersion(v);
    await this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return init.result;
  }

  /** Notifications, and responses to requests the upstream made of the client. */
  async send(msg: JsonRpcMessage): Promise<void> {
    if (this.closed) throw new BehalfError('upstream_unavailable');
    await this.transport.send(msg as JSONRPCMessage).catch((err: unknown) => {
      throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const t = this.transport as Transport & { terminateSession?: () => Promise<void> };
    // Closing is best effort: an upstream that cannot be told is being left either way, and the connection is marked closed below.
    await t.terminateSession?.().catch(() => undefined);
    // Same: a transport that fails to close is dropped; handleClosed below settles every pending call.
    await this.transport.close().catch(() => undefined);
    this.handleClosed();
  }

  private receive(msg: JsonRpcMessage): void {
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
    if (isRequest(msg) || 'method' in msg) this.onServerMessage?.(msg);
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
