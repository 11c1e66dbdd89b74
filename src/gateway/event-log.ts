import type { FleetEvent } from '../state/shared-event-logs.js';

export interface LoggedEvent {
  id: string;
  stream: string;
  /** The event's data: a JSON-RPC message, or empty for a priming event. */
  data: string;
}

/**
 * Where a fleet instance's log also goes (state.redis), so that any instance
 * can replay what a client missed (docs/architecture.md §11).
 */
export interface EventLogMirror {
  /**
   * Unique to this gateway process, in every stream key: two instances'
   * streams of one session never share a key. Not the instance id: an
   * instance restarted under the same id counts its streams from 1 again.
   */
  tag: string;
  append(entry: FleetEvent): void;
  read(): Promise<FleetEvent[]>;
}

/** What a client resuming with `Last-Event-ID` gets: its stream, the events it missed, and where the rest is. */
export interface Resumption {
  stream: string;
  events: LoggedEvent[];
  /** The session's standalone GET stream (of this or another instance), not a POST's. */
  standalone: boolean;
  /** A POST stream whose call is still running on another instance: the client polls for the rest. */
  carriedElsewhere: boolean;
}

/** The standalone stream's key ends in `s0` (POST streams count from s1), on every instance. */
function isStandalone(stream: string): boolean {
  return stream === 's0' || stream.endsWith('.s0');
}

/**
 * The events one session sent on its SSE streams, kept so a client whose
 * stream broke (or that the upstream told to poll) can resume it with
 * `Last-Event-ID`. Bounded by count and bytes, oldest dropped first; it lives
 * in the session, so only the session's own principal can read it back. In a
 * fleet it is mirrored to Redis, where the same bounds hold for the session
 * as a whole.
 */
export class SessionEventLog {
  private readonly events: LoggedEvent[] = [];
  private bytes = 0;
  private seq = 0;
  private streams = 0;
  private readonly prefix: string;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    private readonly mirror?: EventLogMirror,
  ) {
    this.prefix = mirror ? `${mirror.tag}.` : '';
  }

  /** The key of the session's standalone GET stream on this instance, constant across reconnections. */
  get standaloneStream(): string {
    return `${this.prefix}s0`;
  }

  /**
   * A fresh key for a new stream of this session: event ids are
   * `<stream>.<seq>`, so an id names its stream. A counter, not random bytes:
   * the log is the session's own, so an id is worth nothing to anyone else,
   * and every POST that may stream takes one (random bytes cost a syscall).
   */
  newStream(): string {
    return `${this.prefix}s${++this.streams}`;
  }

  append(stream: string, data: string): string {
    const id = `${stream}.${++this.seq}`;
    this.events.push({ id, stream, data });
    this.bytes += data.length;
    while (this.events.length > this.maxEvents || this.bytes > this.maxBytes) {
      const dropped = this.events.shift();
      if (!dropped) break;
      this.bytes -= dropped.data.length;
    }
    this.mirror?.append({ id, stream, data, at: Date.now() });
    return id;
  }

  /** A POST stream's call is over: an instance replaying it from the fleet's log ends the stream instead of polling. */
  end(stream: string): void {
    this.mirror?.append({ stream, end: true, at: Date.now() });
  }

  /** The stream an event id belongs to and that stream's later events; undefined when the id is not (or no longer) held. */
  after(lastEventId: string): { stream: string; events: LoggedEvent[] } | undefined {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    if (at < 0) return undefined;
    const stream = this.events[at]!.stream;
    return { stream, events: this.events.slice(at + 1).filter((e) => e.stream === stream) };
  }

  /**
   * Where to resume from `lastEventId`: this instance's own log first, else
   * the fleet's. A POST stream from the fleet's log whose call has no end mark
   * is still carried by the instance that runs it, unless its oldest event is
   * older than a call can last (`callTimeoutMs`): that instance is gone.
   */
  async resume(lastEventId: string, callTimeoutMs: number): Promise<Resumption | undefined> {
    const local = this.after(lastEventId);
    if (local) return { ...local, standalone: isStandalone(local.stream), carriedElsewhere: false };
    if (!this.mirror) return undefined;
    const all = await this.mirror.read();
    const at = all.findIndex((e) => e.id === lastEventId);
    if (at < 0) return undefined;
    const stream = all[at]!.stream;
    const own = all.filter((e) => e.stream === stream);
    const over = own.some((e) => e.end) || Date.now() - own[0]!.at > callTimeoutMs;
    const events = all
      .slice(at + 1)
      .filter((e) => e.stream === stream && e.id !== undefined)
      .map((e) => ({ id: e.id!, stream, data: e.data ?? '' }));
    const standalone = isStandalone(stream);
    // Our own stream not live here is over: only its own instance carries a call.
    const mine = stream.startsWith(this.prefix);
    return { stream, events, standalone, carriedElsewhere: !standalone && !over && !mine };
  }
}
