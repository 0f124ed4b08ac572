// A controller: a work queue fed by informer events, and a bounded number of workers that
// take keys from it and reconcile them. It owns the retry policy of the reconcile contract:
//   error           -> requeue with per-key exponential backoff
//   TerminalError   -> logged, not retried
//   requeueAfterMs  -> backoff reset, run again after that delay
//   otherwise       -> backoff reset
import { randomUUID } from 'node:crypto';
import { parseKey } from './kube-types.ts';
import type { Logger } from './logger.ts';
import type { Reconciler, ReconcileResult } from './reconciler.ts';
import { TerminalError } from './reconciler.ts';
import { WorkQueue } from './workqueue.ts';
import { counter, histogram, exponentialBuckets, type Registry } from './metrics.ts';
import type { BackoffPolicy } from './clock.ts';
import { errorMessage, toKubeError } from './errors.ts';

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  workers: number;
  logger: Logger;
  registry?: Registry;
  backoff?: BackoffPolicy;
  /**
   * The queue to work from, when others must be able to wake keys before the controller
   * exists (its reconciler's own dependencies); by default the controller makes its own.
   */
  queue?: WorkQueue;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly options: ControllerOptions;
  private abort = new AbortController();
  private workers: Promise<void>[] = [];
  private readonly metrics;

  constructor(options: ControllerOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new Error('workers must be at least 1');
    this.name = options.name;
    this.options = options;
    this.queue =
      options.queue ??
      new WorkQueue({
        name: options.name,
        ...(options.registry ? { registry: options.registry } : {}),
        ...(options.backoff ? { backoff: options.backoff } : {}),
      });
    const r = options.registry;
    this.metrics = r
      ? {
          total: counter(r, {
            name: 'controller_runtime_reconcile_total',
            help: 'Reconciles, by controller and result (success, error, terminal_error, requeue_after).',
            labelNames: ['controller', 'result'] as const,
          }),
          time: histogram(r, {
            name: 'controller_runtime_reconcile_time_seconds',
            help: 'Duration of reconciles.',
            labelNames: ['controller'] as const,
            buckets: exponentialBuckets(0.001, 2, 16),
          }),
        }
      : undefined;
  }

  /** Queues a key for reconciliation. Informer handlers call this and nothing else. */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  /** Starts the workers. Keys already queued are processed first. */
  start(): void {
    if (this.workers.length > 0) return;
    this.abort = new AbortController();
    for (let i = 0; i < this.options.workers; i++) this.workers.push(this.work());
  }

  /** Stops taking keys, aborts running reconciles' signal, and waits for the workers. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.queue.shutDown();
    await Promise.all(this.workers);
    this.workers = [];
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const reconcileId = randomUUID().slice(0, 8);
    const log = this.options.logger.child({ controller: this.name, resource: key, reconcileId });
    const started = performance.now();
    let result: ReconcileResult;
    try {
      result = await this.options.reconciler.reconcile(parseKey(key), {
        log,
        reconcileId,
        signal: this.abort.signal,
      });
    } catch (err) {
      this.metrics?.time.observe({ controller: this.name }, (performance.now() - started) / 1000);
      if (this.abort.signal.aborted) return;
      if (err instanceof TerminalError) {
        this.metrics?.total.inc({ controller: this.name, result: 'terminal_error' });
        this.queue.forget(key);
        log.error('reconcile failed; not retrying until the resource changes', { error: err.message });
        return;
      }
      this.metrics?.total.inc({ controller: this.name, result: 'error' });
      const delay = this.queue.addRateLimited(key);
      log.warn('reconcile failed; retrying', {
        error: errorMessage(toKubeError(err)),
        retryInMs: delay,
        attempt: this.queue.numRequeues(key),
      });
      return;
    }
    this.metrics?.time.observe({ controller: this.name }, (performance.now() - started) / 1000);
    this.queue.forget(key);
    // This result says when to look next: a timer set by an earlier result no longer holds.
    this.queue.cancelAfter(key);
    if (result.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
      this.metrics?.total.inc({ controller: this.name, result: 'requeue_after' });
      this.queue.addAfter(key, result.requeueAfterMs);
    } else {
      this.metrics?.total.inc({ controller: this.name, result: 'success' });
    }
    log.debug('reconciled', { durationMs: Math.round(performance.now() - started), ...result });
  }
}
