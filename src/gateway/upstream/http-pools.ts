import { Pool } from 'undici';

/** How long closing waits for requests still in flight (a session's DELETE) before cutting them. */
const CLOSE_GRACE_MS = 1_000;

/**
 * One pool of kept-alive connections per upstream origin, shared by every
 * session of one gateway: a session is a header, not a connection, so
 * sessions reuse sockets instead of each opening its own.
 */
export class HttpPools {
  private readonly pools = new Map<string, Pool>();

  for(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool || pool.closed || pool.destroyed) {
      // No cap: an open SSE response holds its connection for as long as it lasts, and a capped pool full of
      // streams would queue every call behind them. Idle sockets close after the keep-alive timeout.
      pool = new Pool(origin, { connections: null, keepAliveTimeout: 4_000 });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Gateway shutdown: requests in flight get a moment to finish, then every connection is cut. */
  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(
      all.map(async (pool) => {
        const grace = new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref());
        // A pool that fails to close gracefully is destroyed below either way.
        await Promise.race([pool.close().catch(() => undefined), grace]);
        // Destroying is the last resort at shutdown: a pool that fails even that goes with the process.
        await pool.destroy().catch(() => undefined);
      }),
    );
  }
}
