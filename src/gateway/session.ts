import type { Principal } from '../identity/principal.js';
import type { SessionBase } from '../state/sessions.js';
import type { SessionEventLog } from './event-log.js';
import type { LazyPostStream } from './lazy-post-stream.js';
import type { SseWriter } from './sse-writer.js';
import type { ToolCatalog } from './tool-catalog.js';
import type { UpstreamConnection } from './upstream/connection.js';

export interface GatewaySession extends SessionBase {
  kind: 'streamable' | 'legacy-sse' | 'stateless';
  upstream: UpstreamConnection;
  /** The upstream's tools and annotations, loaded only when the policy reads annotations. */
  tools: ToolCatalog;
  /** On signed-context routes: one upstream connection per user of this session (user-upstreams.ts). */
  userUpstreams?: Map<string, { principal: Principal; connection: Promise<UpstreamConnection> }>;
  protocolVersion?: string;
  /** The upstream's initialize result, kept to answer stateless `server/discover`. */
  initializeResult?: Record<string, unknown>;
  /** The standalone GET stream (Streamable HTTP) or the legacy SSE stream. */
  stream?: SseWriter;
  /** POST responses currently streaming, where messages related to an in-flight call can go. */
  postStreams: Set<LazyPostStream>;
  /** Streamable sessions: events of its SSE streams, kept for resumption with Last-Event-ID (absent when turned off). */
  events?: SessionEventLog;
  /** Resumable POST streams whose call is still in flight, by stream key: a resuming GET attaches to one. */
  liveStreams: Map<string, LazyPostStream>;
  /** The stream key of the session's standalone GET stream, constant across reconnections. */
  standaloneStream: string;
  /** Requests being answered on this session now: while any is, the session is in use and never evicted as idle. */
  inFlight: number;
  streamExpiry?: NodeJS.Timeout;
  /** In a fleet's Redis, its upstream session continued by any instance: ending it here must not end it upstream. */
  fleetShared?: boolean;
}

/** The session's GET stream (Streamable HTTP) or its legacy SSE stream is open. */
export function hasOpenStream(s: GatewaySession): boolean {
  return s.stream !== undefined && !s.stream.isClosed;
}
