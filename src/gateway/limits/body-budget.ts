/**
 * The bytes of request bodies that all requests in progress hold together
 * (`server.maxBufferedBodyBytes`). A request takes its declared length before
 * it reads (or each chunk as it arrives, when no length is declared) and gives
 * everything back when its response is done, so what is buffered at once is
 * bounded whatever number of connections sends bodies.
 */
export class BodyBudget {
  private used = 0;

  constructor(
    readonly cap: number,
    private readonly onFull: (wanted: number) => void,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** A hold for one request; release it once, when the request is over. */
  hold(): BodyHold {
    let held = 0;
    return {
      take: (n) => {
        if (this.used + n > this.cap) {
          this.onFull(n);
          return false;
        }
        this.used += n;
        held += n;
        return true;
      },
      release: () => {
        this.used -= held;
        held = 0;
      },
    };
  }
}

export interface BodyHold {
  /** Takes `n` more bytes; false when they do not fit (nothing taken). */
  take(n: number): boolean;
  release(): void;
}
