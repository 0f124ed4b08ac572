// An informer: a local cache of one resource kind, kept current by list+watch, that tells
// its handlers what was added, changed and deleted.
//
// Written here rather than taken from client-node, whose ListWatch stops for good on any
// error other than 410 or a client timeout (network errors, 5xx, 403), sends no watch
// bookmarks (a quiet watch reconnects every 30 s and a long-quiet resourceVersion expires
// into a full relist), gives update handlers no old object, and opens every watch on a new
// connection pool. This one:
//   - lists in pages, then watches from the list's resourceVersion, with bookmarks;
//   - resumes from the last resourceVersion seen when a watch ends or fails;
//   - relists when the server says the resourceVersion is too old (410 Gone);
//   - restarts after any other error with exponential backoff, logging each failure and
//     counting it in metrics; it stops only when stop() is called.
import { createInterface } from 'node:readline';
import type { KubeClient } from './kube-client.ts';
import { KubeApiError, isGone, isNotFound, errorMessage, toKubeError } from './errors.ts';
import type { KubeList, KubeObject, StatusBody } from './kube-types.ts';
import { keyOf } from './kube-types.ts';
import { backoffDelay, sleep, type BackoffPolicy } from './clock.ts';
import type { Logger } from './logger.ts';
import { counter, gauge, type Registry } from './metrics.ts';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions<T = unknown> {
  /** For logs and metrics, for example "imagepolicies". */
  name: string;
  /** Collection path, for example /apis/patchline.dev/v1alpha1/imagepolicies. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  registry?: Registry;
  backoff?: BackoffPolicy;
  /** Server-side watch timeout; the watch is then resumed. Jittered by up to 10%. */
  watchTimeoutSeconds?: number;
  pageSize?: number;
  /**
   * Applied to every object before it is cached: keeps only the fields the controllers read
   * (pods and workloads are large and numerous; what is cached is the operator's memory).
   * Undefined: the object is not kept at all (and one kept before counts as deleted).
   */
  transform?: (received: KubeObject) => T | undefined;
  /** Waited for before the first list: the caches `transform` reads must be filled first. */
  waitBeforeList?: () => Promise<unknown>;
  /**
   * The resource may not be served (a CRD of another project, such as Trivy Operator's
   * VulnerabilityReport): a 404 counts as an empty, synced cache, so readiness does not wait
   * for it, and the informer looks again every `absentRetryMs` (default 60 s).
   */
  optional?: boolean;
  absentRetryMs?: number;
}

interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T | StatusBody;
}

/** How long a deletion seen by the watch keeps insertIfAbsent from bringing the object back. */
const TOMBSTONE_MS = 60_000;

/** Thrown inside the loop to end a watch and relist. */
class RelistNeeded extends Error {}

export class Informer<T extends KubeObject> {
  private readonly client: KubeClient;
  private readonly options: InformerOptions<T>;
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly cache = new Map<string, T>();
  /** The same objects by namespace, for controllers that look at one namespace at a time. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private resourceVersion = '';
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly metrics;

  constructor(client: KubeClient, options: InformerOptions<T>) {
    this.client = client;
    this.options = options;
    const r = options.registry;
    this.metrics = r
      ? {
          lists: counter(r, {
            name: 'patchline_informer_lists_total',
            help: 'Full lists made by informers.',
            labelNames: ['informer'] as const,
          }),
          watches: counter(r, {
            name: 'patchline_informer_watches_total',
            help: 'Watch requests opened by informers.',
            labelNames: ['informer'] as const,
          }),
          errors: counter(r, {
            name: 'patchline_informer_errors_total',
            help: 'List or watch failures, each followed by a restart with backoff.',
            labelNames: ['informer'] as const,
          }),
          objects: gauge(r, {
            name: 'patchline_informer_objects',
            help: 'Objects held in the informer cache.',
            labelNames: ['informer'] as const,
          }),
        }
      : undefined;
  }

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  /** Starts the list+watch loop; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    if (!this.loop) {
      this.abort = new AbortController();
      this.loop = this.run(this.abort.signal);
    }
    await this.waitForSync();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.loop = undefined;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** The cached objects of one namespace. */
  listNamespace(namespace: string): T[] {
    return [...(this.byNamespace.get(namespace)?.values() ?? [])];
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** The resourceVersion the next watch resumes from; empty before the first list. */
  latestResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const log = this.options.logger;
    const policy = this.options.backoff ?? { baseMs: 500, maxMs: 30_000, jitter: 0.2 };
    let failures = 0;
    let absent = false;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) {
          if (this.options.waitBeforeList && !this.synced) await this.options.waitBeforeList();
          await this.relist(signal);
        }
        if (absent) log.info('resource now served', { informer: this.options.name });
        absent = false;
        await this.watch(signal);
        failures = 0; // the watch ran and ended normally (server timeout): resume at once
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof RelistNeeded || isGone(err)) {
          log.info('resourceVersion expired; relisting', { informer: this.options.name });
          this.resourceVersion = '';
          continue;
        }
        if (this.options.optional && isNotFound(err)) {
          if (!absent) log.info('resource not served; treated as empty until it is', { informer: this.options.name });
          absent = true;
          this.resourceVersion = '';
          this.replace([]);
          this.markSynced();
          await sleep(this.options.absentRetryMs ?? 60_000, signal);
          continue;
        }
        const delay = backoffDelay(failures, policy);
        failures++;
        this.metrics?.errors.inc({ informer: this.options.name });
        log.warn('list/watch failed; restarting', {
          informer: this.options.name,
          error: errorMessage(toKubeError(err)),
          attempt: failures,
          retryInMs: delay,
        });
        await sleep(delay, signal);
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    this.metrics?.lists.inc({ informer: this.options.name });
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.client.requestJson<KubeList<T>>('GET', this.options.path, {
        query: {
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          limit: this.options.pageSize ?? 500,
          continue: cont,
        },
        signal,
      });
      // Slimmed page by page: a relist of 20,000 pods never holds them all as received.
      for (const received of page.items) {
        const shaped = this.shape(received);
        if (shaped) items.push(shaped);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion;
    } while (cont);
    this.replace(items);
    this.resourceVersion = rv ?? '';
    this.markSynced();
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  /** Replaces the cache with a fresh list, telling handlers what changed meanwhile. */
  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.forget(key, old);
        this.emit((h) => h.onDelete?.(old));
      }
    }
    this.metrics?.objects.set({ informer: this.options.name }, this.cache.size);
  }

  /** What the cache keeps of an object as received (the transform, when there is one). */
  private shape(received: T): T | undefined {
    return this.options.transform ? this.options.transform(received) : received;
  }

  /** Caches an object already shaped. */
  private upsert(key: string, obj: T): void {
    const old = this.cache.get(key);
    this.cache.set(key, obj);
    const ns = obj.metadata?.namespace ?? '';
    let inNamespace = this.byNamespace.get(ns);
    if (!inNamespace) this.byNamespace.set(ns, (inNamespace = new Map<string, T>()));
    inNamespace.set(key, obj);
    if (!old) this.emit((h) => h.onAdd?.(obj));
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit((h) => h.onUpdate?.(old, obj));
  }

  /** A cached object the transform no longer keeps: gone, as far as handlers can tell. */
  private drop(key: string): void {
    const old = this.cache.get(key);
    if (!old) return;
    this.forget(key, old);
    this.emit((h) => h.onDelete?.(old));
  }

  /**
   * Caches an object read outside list+watch (a list of its own), unless the cache already
   * holds it — a watch event applied meanwhile is at least as new — or the watch said it was
   * deleted within the last minute (the read may predate the deletion). For a cache whose
   * transform now keeps objects it did not keep before (see GovernedPods).
   */
  insertIfAbsent(received: T): boolean {
    const key = keyOf(received);
    if (this.cache.has(key) || this.recentlyDeleted(key)) return false;
    const shaped = this.shape(received);
    if (!shaped) return false;
    this.upsert(key, shaped);
    this.metrics?.objects.set({ informer: this.options.name }, this.cache.size);
    return true;
  }

  /** Keys the watch reported deleted, with when: kept a minute, for insertIfAbsent. */
  private readonly tombstones = new Map<string, number>();

  private recentlyDeleted(key: string): boolean {
    const at = this.tombstones.get(key);
    return at !== undefined && Date.now() - at < TOMBSTONE_MS;
  }

  private tombstone(key: string): void {
    const now = Date.now();
    // Oldest first (insertion order): drop the expired ones from the front.
    for (const [k, at] of this.tombstones) {
      if (now - at < TOMBSTONE_MS) break;
      this.tombstones.delete(k);
    }
    this.tombstones.delete(key);
    this.tombstones.set(key, now);
  }

  private forget(key: string, obj: T): void {
    this.cache.delete(key);
    const ns = obj.metadata?.namespace ?? '';
    const inNamespace = this.byNamespace.get(ns);
    inNamespace?.delete(key);
    if (inNamespace?.size === 0) this.byNamespace.delete(ns);
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const base = this.options.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.round(base * (1 + Math.random() * 0.1));
    this.metrics?.watches.inc({ informer: this.options.name });
    const response = await this.client.stream(this.options.path, {
      query: {
        watch: 1,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
      },
      signal,
      // The server ends the watch after timeoutSeconds; silence well past that means the
      // connection is dead without anyone having closed it.
      bodyTimeoutMs: (timeoutSeconds + 30) * 1000,
    });
    const lines = createInterface({ input: response.body, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line.trim()) continue;
        let event: WatchEvent<T>;
        try {
          event = JSON.parse(line) as WatchEvent<T>;
        } catch {
          throw new Error(`malformed watch event from ${this.options.path}`);
        }
        this.apply(event);
      }
    } finally {
      lines.close();
      response.body.destroy();
    }
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      const status = event.object as StatusBody;
      if (status.code === 410) throw new RelistNeeded('watch expired');
      throw KubeApiError.fromStatus(status.code ?? 500, status, 'watch error event');
    }
    const obj = event.object as T;
    const rv = obj.metadata?.resourceVersion;
    if (event.type !== 'BOOKMARK') {
      const key = keyOf(obj);
      if (event.type === 'DELETED') {
        this.tombstone(key);
        const old = this.cache.get(key);
        this.forget(key, old ?? obj);
        this.emit((h) => h.onDelete?.(old ?? obj));
      } else {
        const shaped = this.shape(obj);
        if (shaped) this.upsert(key, shaped);
        else this.drop(key);
      }
      this.metrics?.objects.set({ informer: this.options.name }, this.cache.size);
    }
    if (rv) this.resourceVersion = rv;
  }

  private emit(call: (h: InformerHandlers<T>) => void): void {
    for (const h of this.handlers) {
      try {
        call(h);
      } catch (err) {
        // A handler only enqueues keys; if one throws, the cache must still move on.
        this.options.logger.error('informer handler failed', {
          informer: this.options.name,
          error: errorMessage(err),
        });
      }
    }
  }
}
