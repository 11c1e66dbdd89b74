import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../identity/principal.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { Endpoint, Route } from './route.js';
import type { GatewayRuntime } from './runtime.js';
import type { GatewaySession } from './session.js';
import type { RelatedSink } from './upstream/transport.js';
import type { TraceSpan } from '../ops/tracing.js';

/** Everything one HTTP request accumulates on its way through the pipeline. */
export interface RequestContext {
  rt: GatewayRuntime;
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  route: Route;
  endpoint: Endpoint;
  transport: 'streamable-http' | 'sse';
  started: number;
  /** Set once the body is being read: a refusal before that has not read it (src/gateway/unread-body.ts). */
  bodyStarted?: boolean;
  body?: Buffer;
  messages?: JsonRpcMessage[];
  isBatch?: boolean;
  principal?: Principal;
  session?: GatewaySession;
  protocolVersion?: string;
  /** This request's own response stream, where the upstream's messages about its calls go ahead of their responses. */
  relatedSink?: RelatedSink;
  /** Names this request in every log line about it (src/ops/request-ops.ts). */
  requestId?: string;
  /** With tracing: the request's server span. */
  span?: TraceSpan;
}

/** One pipeline step: a verb-named function and why it sits where it does. */
export interface Step {
  name: string;
  why: string;
  run(ctx: RequestContext): void | Promise<void>;
}
