/**
 * The promise for `key`, made the first time it is asked for and shared by
 * every later ask (one discovery, one command run, however many callers). A
 * rejected promise is forgotten, so the next ask tries again.
 */
export function memoPromise<K, V>(cache: Map<K, Promise<V>>, key: K, make: () => Promise<V>): Promise<V> {
  let p = cache.get(key);
  if (!p) {
    p = make();
    cache.set(key, p);
    // Only forgets: every caller awaits p and sees the rejection itself.
    p.catch(() => cache.delete(key));
  }
  return p;
}
