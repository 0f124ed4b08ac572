// A work queue with client-go's semantics:
//  - a key waits in the queue at most once (adding it again while it waits is a no-op);
//  - a key is never handed to two workers at once: added while being processed, it is
//    marked dirty and queued again when the worker calls done();
//  - per-key exponential backoff for failures (addRateLimited), reset by forget();
//  - delayed adds (addAfter), keeping the earliest when a key is scheduled twice, and
//    dropped (cancelAfter) when a finished reconcile says when to look next.
// Concurrency is bounded by the number of workers calling get().
import { backoffDelay, systemClock, type BackoffPolicy, type Clock, type Timer } from './clock.ts';
import { counter, gauge, histogram, exponentialBuckets, type Registry } from './metrics.ts';

export interface WorkQueueOptions {
  name: string;
  backoff?: BackoffPolicy;
  clock?: Clock;
  registry?: Registry;
}

/** Per-key exponential backoff: 5ms, 10ms, 20ms ... up to 1000s, as client-go's default. */
export class ItemExponentialRateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly policy: BackoffPolicy;

  constructor(policy: BackoffPolicy) {
    this.policy = policy;
  }

  /** The delay before the next retry of key, counting this failure. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return backoffDelay(n, this.policy);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

interface Waiter {
  resolve(key: string | undefined): void;
}

export class WorkQueue {
  readonly name: string;
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>(); // key -> start time
  private readonly addedAt = new Map<string, number>();
  private readonly waiters: Waiter[] = [];
  private readonly delayed = new Map<string, { at: number; timer: Timer }>();
  private readonly limiter: ItemExponentialRateLimiter;
  private readonly clock: Clock;
  private shuttingDown = false;
  private readonly metrics;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.limiter = new ItemExponentialRateLimiter(options.backoff ?? { baseMs: 5, maxMs: 1_000_000 });
    const r = options.registry;
    this.metrics = r
      ? {
          depth: gauge(r, {
            name: 'workqueue_depth',
            help: 'Keys waiting in the queue.',
            labelNames: ['name'] as const,
          }),
          adds: counter(r, {
            name: 'workqueue_adds_total',
            help: 'Keys added to the queue.',
            labelNames: ['name'] as const,
          }),
          retries: counter(r, {
            name: 'workqueue_retries_total',
            help: 'Keys re-added with backoff after a failure.',
            labelNames: ['name'] as const,
          }),
          wait: histogram(r, {
            name: 'workqueue_queue_duration_seconds',
            help: 'Time a key waits in the queue before a worker takes it.',
            labelNames: ['name'] as const,
            buckets: exponentialBuckets(0.0001, 4, 11),
          }),
          work: histogram(r, {
            name: 'workqueue_work_duration_seconds',
            help: 'Time a worker spends on a key.',
            labelNames: ['name'] as const,
            buckets: exponentialBuckets(0.0001, 4, 11),
          }),
        }
      : undefined;
  }

  /** Adds a key; a no-op when it is already waiting. */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.adds.inc({ name: this.name });
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // queued again by done()
    this.push(key);
  }

  /** Adds a key after a delay. A key already scheduled earlier keeps its earlier time. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    existing?.timer.cancel();
    const timer = this.clock.setTimer(delayMs, () => {
      this.delayed.delete(key);
      this.add(key);
    });
    this.delayed.set(key, { at, timer });
  }

  /**
   * Drops the key's delayed add. A reconcile that succeeded has decided when its key is looked
   * at next; a timer an earlier reconcile (or a failure's backoff) set is stale, and left to
   * fire it would make a settled resource reconcile once more for nothing.
   */
  cancelAfter(key: string): void {
    this.delayed.get(key)?.timer.cancel();
    this.delayed.delete(key);
  }

  /** Adds a key after its backoff delay, which doubles with each failure until forget(). */
  addRateLimited(key: string): number {
    const delay = this.limiter.when(key);
    this.metrics?.retries.inc({ name: this.name });
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff, after a success. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /** The next key to work on; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push({ resolve }));
  }

  /** Marks the key finished; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started !== undefined) this.metrics?.work.observe({ name: this.name }, (this.clock.now() - started) / 1000);
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  len(): number {
    return this.queue.length;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Stops handing out keys; pending get() calls resolve to undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) timer.cancel();
    this.delayed.clear();
    this.queue.length = 0;
    this.dirty.clear();
    this.metrics?.depth.set({ name: this.name }, 0);
    for (const w of this.waiters.splice(0)) w.resolve(undefined);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private push(key: string): void {
    this.addedAt.set(key, this.clock.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve(this.take(key));
      return;
    }
    this.queue.push(key);
    this.metrics?.depth.set({ name: this.name }, this.queue.length);
  }

  private take(key: string): string {
    const now = this.clock.now();
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics?.wait.observe({ name: this.name }, (now - added) / 1000);
    this.addedAt.delete(key);
    this.dirty.delete(key);
    this.processing.set(key, now);
    this.metrics?.depth.set({ name: this.name }, this.queue.length);
    return key;
  }
}
