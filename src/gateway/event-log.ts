export interface LoggedEvent {
  id: string;
  stream: string;
  /** The event's data: a JSON-RPC message, or empty for a priming event. */
  data: string;
}

/**
 * The events one session sent on its SSE streams, kept so a client whose
 * stream broke (or that the upstream told to poll) can resume it with
 * `Last-Event-ID`. Bounded by count and bytes, oldest dropped first; it lives
 * in the session, so only the session's own principal can read it back.
 */
export class SessionEventLog {
  private readonly events: LoggedEvent[] = [];
  private bytes = 0;
  private seq = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  private streams = 0;

  /**
   * A fresh key for a new stream of this session: event ids are
   * `<stream>.<seq>`, so an id names its stream. A counter, not random bytes:
   * the log is the session's own, so an id is worth nothing to anyone else,
   * and every POST that may stream takes one (random bytes cost a syscall).
   */
  newStream(): string {
    return `s${++this.streams}`;
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
    return id;
  }

  /** The stream an event id belongs to and that stream's later events; undefined when the id is not (or no longer) held. */
  after(lastEventId: string): { stream: string; events: LoggedEvent[] } | undefined {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    if (at < 0) return undefined;
    const stream = this.events[at]!.stream;
    return { stream, events: this.events.slice(at + 1).filter((e) => e.stream === stream) };
  }
}
