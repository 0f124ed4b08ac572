// A cache of promises, so that concurrent askers share one load: least recently used entries
// go first past `max`; a failed load is dropped (errors are not answers: the next asker loads
// again). An entry may expire after `ttlMs(value)` (facts that can change, such as whether an
// image is signed); without it, entries live until evicted (content-addressed facts).
export interface PromiseCacheOptions<V> {
  max: number;
  /** How long a loaded value stays fresh; undefined: until evicted. */
  ttlMs?: (value: V) => number;
  now?: () => number;
}

interface Entry<V> {
  value: Promise<V>;
  /** When it goes stale; Infinity while loading or without a TTL. */
  expires: number;
}

export class PromiseCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private readonly options: PromiseCacheOptions<V>;

  constructor(options: PromiseCacheOptions<V>) {
    this.options = options;
  }

  /** The cached value of `key`, or `load()`'s; `fresh` loads again even when cached. */
  get(key: string, load: () => Promise<V>, fresh = false): Promise<V> {
    const now = (this.options.now ?? Date.now)();
    const hit = this.map.get(key);
    if (hit && !fresh && now < hit.expires) {
      this.map.delete(key); // most recently used last
      this.map.set(key, hit);
      return hit.value;
    }
    const entry: Entry<V> = { value: load(), expires: Infinity };
    this.map.delete(key);
    this.map.set(key, entry);
    const ttl = this.options.ttlMs;
    entry.value.then(
      (v) => {
        if (ttl) entry.expires = (this.options.now ?? Date.now)() + ttl(v);
      },
      () => {
        if (this.map.get(key) === entry) this.map.delete(key);
      },
    );
    if (this.map.size > this.options.max) this.map.delete(this.map.keys().next().value as string);
    return entry.value;
  }
}
