import type { JsonRpcMessage } from '../../jsonrpc.js';

/**
 * Where an upstream message came from, when the transport can tell: the
 * gateway id of the request whose response stream carried it. Streamable
 * HTTP knows (a message on a POST's SSE stream belongs to that request);
 * stdio and legacy SSE do not, and `standalone` marks the GET stream, whose
 * messages are unrelated to any request by definition.
 */
export interface MessageOrigin {
  relatedTo?: string;
  standalone?: boolean;
}

/** What the gateway needs of a transport to an upstream (the SDK's client transports fit it). */
export interface UpstreamTransport {
  readonly sessionId?: string;
  onmessage?: (msg: JsonRpcMessage, origin?: MessageOrigin) => void;
  onclose?: () => void;
  onerror?: (err: Error) => void;
  /** The upstream ended the stream of request `relatedTo` before answering and will be polled after `retryMs`. */
  onpause?: (relatedTo: string, retryMs: number) => void;
  /** Set by the connection: whether a call still waits for its answer (a paused stream of a dropped call is not resumed). */
  isPending?: (requestId: string) => boolean;
  start(): Promise<void>;
  send(msg: JsonRpcMessage): Promise<void>;
  close(): Promise<void>;
  setProtocolVersion?(version: string): void;
  terminateSession?(): Promise<void>;
  /** Streamable HTTP in a fleet: continue a known upstream session, forget a lost one, report its loss (see http-transport.ts). */
  continueSession?(sessionId: string | undefined, version: string | undefined): void;
  resetSession?(): void;
  recoverable?: boolean;
  /** Opens the upstream's standing stream for messages it starts itself (Streamable HTTP's GET), if it has one. */
  openStandaloneStream?(): void;
}

/** Where messages related to one client request go: its own response stream (a POST's SSE stream, a legacy SSE stream). */
export interface RelatedSink {
  readonly isClosed: boolean;
  message(msg: JsonRpcMessage): void;
  /** The upstream paused the call's stream (SSE polling): the client's stream may pause likewise and be resumed. */
  pause?(retryMs: number): void;
  /**
   * The call waits for its client's input (a stateless call parked with an
   * input-required result): its upstream is blocked on the answers, so a
   * message a transport cannot relate is not taken to be about it.
   */
  readonly awaitingClient?: boolean;
}
