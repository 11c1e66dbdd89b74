import { BehalfError } from '../../errors.js';
import { isRequest, type JsonRpcId, type JsonRpcMessage, type JsonRpcResponse } from '../../jsonrpc.js';
import { refuseUpstreamRequest } from '../deliver.js';
import type { UpstreamConnection } from '../upstream/connection.js';
import type { RelatedSink } from '../upstream/transport.js';
import { clientSupports, INPUT_METHODS } from './input-capabilities.js';

/**
 * How long after an upstream's first request for input the gateway waits for
 * others before answering the client: requests a server sends together
 * (elicitation and sampling in parallel) then reach the client in one
 * input-required result instead of one round each.
 */
const COLLECT_MS = 10;

/** One request of the upstream's to the client, as an input-required result carries it. */
export interface InputRequest {
  method: string;
  params?: Record<string, unknown>;
}

/** What a round ends with: the upstream's answer to the call, or what it asks of the client first. */
export type Round = { response: JsonRpcResponse } | { inputRequests: Record<string, InputRequest> };

type Settled = { response: JsonRpcResponse } | { error: unknown };

/**
 * A call forwarded for a stateless client to an upstream of the 2025 era,
 * which may ask the client for input in the middle of it. It is the call's
 * related sink (src/gateway/upstream/transport.ts): the upstream's requests
 * about the call come here, are kept under keys the gateway chooses, and go
 * to the client as an input-required result; the client's answers go back
 * to the upstream under the upstream's own ids. A key stays the same until it
 * is answered, so a request the client left unanswered is asked again.
 */
export class BridgedCall implements RelatedSink {
  private closed = false;
  private settled?: Settled;
  private done: Promise<void> = Promise.resolve();
  private nextKey = 1;
  private readonly outstanding = new Map<string, { id: JsonRpcId } & InputRequest>();
  private wake?: () => void;
  /** Between rounds: the client has the input-required result and the upstream waits for its answers. */
  awaitingClient = false;

  constructor(
    private readonly upstream: UpstreamConnection,
    private readonly log: (line: string) => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** The forwarded call's pending answer; this object must already be its related sink. */
  track(pending: Promise<JsonRpcResponse>): void {
    this.done = pending.then(
      (response) => void (this.settled = { response }),
      (error: unknown) => void (this.settled = { error }),
    );
    void this.done.then(() => this.wake?.());
  }

  message(msg: JsonRpcMessage): void {
    // Notifications (progress, logs) have nowhere to go: a stateless client has no stream, as for any stateless call.
    if (!isRequest(msg)) return;
    if (this.closed) {
      refuseUpstreamRequest(this.upstream, msg.id, new BehalfError('no_client_stream'), this.log);
      return;
    }
    if (msg.method === 'ping') {
      this.reply(msg.id, { result: {} });
      return;
    }
    const capability = INPUT_METHODS[msg.method];
    if (!capability) {
      refuseUpstreamRequest(this.upstream, msg.id, new BehalfError('not_available_here'), this.log);
      return;
    }
    this.outstanding.set(`${capability}-${this.nextKey++}`, { id: msg.id, method: msg.method, params: msg.params });
    this.wake?.();
  }

  /**
   * Waits for the end of this round: the call's answer (which always wins),
   * or the requests for input outstanding once the upstream has had a moment
   * to send any that go with them. A request the client did not declare the
   * capability for is refused to the upstream, never put to the client.
   */
  async nextRound(caps: Record<string, unknown>): Promise<Round> {
    this.awaitingClient = false;
    const round = await this.play(caps);
    this.awaitingClient = 'inputRequests' in round;
    return round;
  }

  private async play(caps: Record<string, unknown>): Promise<Round> {
    for (;;) {
      if (this.settled) return this.finish(this.settled);
      this.refuseUndeclared(caps);
      if (this.outstanding.size > 0) {
        await Promise.race([this.done, new Promise((r) => setTimeout(r, COLLECT_MS))]);
        if (this.settled) return this.finish(this.settled);
        this.refuseUndeclared(caps);
        if (this.outstanding.size > 0) return { inputRequests: this.inputRequests() };
        continue;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }

  /** The keys still waiting for the client's answer. */
  get keys(): string[] {
    return [...this.outstanding.keys()];
  }

  /** Gives the client's result for `key` to the upstream; a key not outstanding is ignored (SEP-2322: unknown input is ignored). */
  async answer(key: string, result: Record<string, unknown>): Promise<void> {
    const req = this.outstanding.get(key);
    if (!req) return;
    this.outstanding.delete(key);
    // From the first answer on, what the upstream sends may be about this call again.
    this.awaitingClient = false;
    await this.upstream.send({ jsonrpc: '2.0', id: req.id, result });
  }

  /** Ends the bridge: every request still outstanding is answered with `error`, so the upstream's call can end. */
  abandon(error: BehalfError): void {
    this.closed = true;
    for (const req of this.outstanding.values()) refuseUpstreamRequest(this.upstream, req.id, error, this.log);
    this.outstanding.clear();
  }

  private finish(settled: Settled): Round {
    // The call is over: whatever it still asked is moot, and the upstream should not wait for it.
    this.abandon(new BehalfError('client_input_expired', 'the call this request belonged to has ended'));
    if ('error' in settled) throw settled.error;
    return { response: settled.response };
  }

  private refuseUndeclared(caps: Record<string, unknown>): void {
    for (const [key, req] of this.outstanding) {
      if (clientSupports(caps, req.method, req.params)) continue;
      this.outstanding.delete(key);
      refuseUpstreamRequest(this.upstream, req.id, new BehalfError('client_capability_missing'), this.log);
    }
  }

  private inputRequests(): Record<string, InputRequest> {
    const out: Record<string, InputRequest> = {};
    for (const [key, { method, params }] of this.outstanding) out[key] = params ? { method, params } : { method };
    return out;
  }

  private reply(id: JsonRpcId, body: { result: Record<string, unknown> }): void {
    void this.upstream
      .send({ jsonrpc: '2.0', id, ...body })
      .catch((err: unknown) => this.log(`could not answer an upstream ping: ${String((err as Error)?.name)}`));
  }
}
