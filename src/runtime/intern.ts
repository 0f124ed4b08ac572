// One copy of each short, oft-repeated string in the caches. JSON.parse gives every object its
// own copies, and an operator's caches hold tens of thousands of objects that say the same few
// thousand things (namespaces, images, digests, condition reasons and messages): at 10,000
// policies and 20,000 workloads that was a quarter of the live heap. V8 does not deduplicate
// strings by itself, so the informers' transforms pass what they keep through here.
//
// The pool is bounded and starts afresh when full, so that unique strings (timestamps, names)
// cannot make it grow with time; strings already shared stay shared.

const MAX_ENTRIES = 50_000;
const MAX_LENGTH = 512;
let pool = new Map<string, string>();

export function intern<T extends string | undefined>(value: T): T {
  if (value === undefined || value.length > MAX_LENGTH) return value;
  const known = pool.get(value);
  if (known !== undefined) return known as T;
  if (pool.size >= MAX_ENTRIES) pool = new Map();
  pool.set(value, value);
  return value;
}

/** Interns every string inside a freshly parsed JSON value, in place, and returns it. */
export function internDeep<T>(value: T): T {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = internValue(value[i]);
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = internValue(record[key]);
  }
  return value;
}

function internValue(v: unknown): unknown {
  if (typeof v === 'string') return intern(v);
  if (v !== null && typeof v === 'object') return internDeep(v);
  return v;
}
