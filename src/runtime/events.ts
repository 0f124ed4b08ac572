// Kubernetes Events (events.k8s.io/v1) about the resources a controller manages.
// A repeat of the same event (same object, type, reason and note) within ten minutes is
// folded into the first one's series (count and last time) with a patch instead of a new
// object, as client-go's recorder does. Recording never throws: an event that cannot be
// written is logged and dropped, so that it can never fail a reconcile.
//
// Events are written behind a small, bounded queue: they are the least urgent writes an
// operator makes, and at a first sync of thousands of resources one Event each would
// otherwise contend with the status writes that make them Ready (and hold thousands of
// requests in memory). Like client-go's broadcaster, a full queue drops new Events — each
// one is still in the audit log (AuditedEventRecorder) — counted and logged.
import type { KubeClient } from './kube-client.ts';
import { formatMicroTime, type KubeObject } from './kube-types.ts';
import type { Logger } from './logger.ts';
import { errorMessage, toKubeError } from './errors.ts';
import { counter, type Registry } from './metrics.ts';

export type EventType = 'Normal' | 'Warning';

/**
 * Facts for the audit trail that an Event's note only tells in prose: the digests, the
 * workload and container, the check that failed. Logged as fields; not part of the Event.
 */
export type AuditDetails = Record<string, string | number | boolean | readonly string[] | undefined>;

export interface EventRecorder {
  /**
   * Records that `reason` happened to `regarding`. `action` says what the controller did
   * (for example Reconcile, TriggerBuild, Rollout); `note` is for humans; `details` are
   * for the audit trail.
   */
  record(
    regarding: KubeObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
    details?: AuditDetails,
  ): void;
}

interface SeriesEntry {
  name: string;
  namespace: string;
  count: number;
  lastSeen: number;
}

let lastSuffix = 0n;

/** Hex nanoseconds since the epoch, strictly increasing within this process. */
function eventSuffix(nowMs: number): string {
  let ns = BigInt(nowMs) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  if (ns <= lastSuffix) ns = lastSuffix + 1n;
  lastSuffix = ns;
  return ns.toString(16);
}

const SERIES_WINDOW_MS = 10 * 60 * 1000;
const MAX_NOTE = 1024;
const DROP_LOG_EVERY_MS = 60_000;
const MAX_SERIES = 20_000;

/** What an Event names of its object: kept instead of the object while the Event waits. */
interface Regarding {
  apiVersion: string | undefined;
  kind: string | undefined;
  name: string | undefined;
  namespace: string | undefined;
  uid: string | undefined;
  resourceVersion: string | undefined;
}

interface QueuedEvent {
  regarding: Regarding;
  type: EventType;
  reason: string;
  action: string;
  note: string;
  at: number;
}

export interface KubeEventRecorderOptions {
  client: Pick<KubeClient, 'requestJson'>;
  /** reportingController, for example patchline.dev/operator. */
  controller: string;
  /** reportingInstance: this replica's name. */
  instance: string;
  logger: Logger;
  registry?: Registry;
  now?: () => number;
  /** Events written at once (default 2). */
  maxInFlight?: number;
  /** Events waiting beyond those; more are dropped (default 1000, client-go's figure). */
  maxQueued?: number;
}

export class KubeEventRecorder implements EventRecorder {
  private readonly options: KubeEventRecorderOptions;
  private readonly series = new Map<string, SeriesEntry>();
  private readonly queue: QueuedEvent[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private dropped = 0;
  private lastDropLog = -Infinity;
  private lastPrune = -Infinity;
  private readonly written;
  private readonly droppedTotal;

  constructor(options: KubeEventRecorderOptions) {
    this.options = options;
    this.written = options.registry
      ? counter(options.registry, {
          name: 'patchline_events_total',
          help: 'Kubernetes Events recorded, by type and reason.',
          labelNames: ['type', 'reason'] as const,
        })
      : undefined;
    this.droppedTotal = options.registry
      ? counter(options.registry, {
          name: 'patchline_events_dropped_total',
          help: 'Kubernetes Events not written because too many were waiting (each is still in the audit log).',
          labelNames: [] as const,
        })
      : undefined;
  }

  record(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    const now = this.now();
    if (this.queue.length >= (this.options.maxQueued ?? 1000)) {
      this.drop(now);
      return;
    }
    const meta = regarding.metadata ?? {};
    this.queue.push({
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      action,
      note: note.slice(0, MAX_NOTE),
      at: now,
    });
    this.pump();
  }

  /** Waits for the events queued and being written, at shutdown and in tests. */
  async flush(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private pump(): void {
    while (this.inFlight < (this.options.maxInFlight ?? 2) && this.queue.length > 0) {
      const next = this.queue.shift() as QueuedEvent;
      this.inFlight++;
      void this.write(next).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.inFlight === 0 && this.queue.length === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private drop(now: number): void {
    this.dropped++;
    this.droppedTotal?.inc();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.lastDropLog = now;
    this.options.logger.warn('events dropped: more are waiting to be written than the queue holds', {
      dropped: this.dropped,
      queued: this.queue.length,
    });
    this.dropped = 0;
  }

  private async write(event: QueuedEvent): Promise<void> {
    const { regarding, type, reason, action, note, at: now } = event;
    const namespace = regarding.namespace ?? 'default';
    const key = [regarding.uid, type, reason, note].join('\u0000');
    this.written?.inc({ type, reason });
    this.prune(now);
    const previous = this.series.get(key);
    try {
      if (previous && now - previous.lastSeen < SERIES_WINDOW_MS) {
        previous.count++;
        previous.lastSeen = now;
        await this.options.client.requestJson(
          'PATCH',
          `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(previous.namespace)}/events/${encodeURIComponent(previous.name)}`,
          {
            body: { series: { count: previous.count, lastObservedTime: formatMicroTime(now) } },
            contentType: 'application/merge-patch+json',
          },
        );
        return;
      }
      const created = await this.options.client.requestJson<{ metadata?: { name?: string } }>(
        'POST',
        `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        {
          body: {
            apiVersion: 'events.k8s.io/v1',
            kind: 'Event',
            // client-go's naming: the object's name and the time in hex nanoseconds. (A
            // generateName ending in '.' is rejected by the API server.)
            metadata: { name: `${regarding.name ?? 'object'}.${eventSuffix(now)}`, namespace },
            eventTime: formatMicroTime(now),
            type,
            reason,
            action,
            note,
            reportingController: this.options.controller,
            reportingInstance: this.options.instance,
            regarding,
          },
        },
      );
      if (created.metadata?.name) {
        this.series.set(key, { name: created.metadata.name, namespace, count: 1, lastSeen: now });
      }
    } catch (err) {
      this.options.logger.warn('could not record event', {
        reason,
        resource: `${namespace}/${regarding.name ?? ''}`,
        error: errorMessage(toKubeError(err)),
      });
      // A series whose event vanished starts afresh next time.
      if (previous) this.series.delete(key);
    }
  }

  /**
   * Forgets series past their window: at most once a minute (walking every series at each
   * write cost seconds of CPU at a first sync of 10,000 resources), and never more than
   * MAX_SERIES of them kept (the oldest go first; a repeat then starts a new Event).
   */
  private prune(now: number): void {
    if (this.series.size >= MAX_SERIES) {
      for (const key of this.series.keys()) {
        this.series.delete(key);
        if (this.series.size < MAX_SERIES * 0.9) break;
      }
    }
    if (this.series.size < 1000 || now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    for (const [key, entry] of this.series) if (now - entry.lastSeen >= SERIES_WINDOW_MS) this.series.delete(key);
  }
}

/** Keeps events in memory: for unit tests of reconcilers. */
/**
 * Every Event recorded is also written as a structured log line (`audit: true`): the audit
 * trail of what the operator decided and why, kept by the log pipeline even when the Event
 * cannot be written or has expired from the API server (Events live an hour by default).
 */
export class AuditedEventRecorder implements EventRecorder {
  private readonly inner: EventRecorder;
  private readonly log: Logger;

  constructor(inner: EventRecorder, log: Logger) {
    this.inner = inner;
    this.log = log;
  }

  record(
    regarding: KubeObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
    details?: AuditDetails,
  ): void {
    this.log.info(note, {
      ...details,
      audit: true,
      kind: regarding.kind,
      namespace: regarding.metadata?.namespace,
      name: regarding.metadata?.name,
      uid: regarding.metadata?.uid,
      type,
      reason,
      action,
    });
    this.inner.record(regarding, type, reason, action, note);
  }
}

export class MemoryEventRecorder implements EventRecorder {
  readonly events: { name: string; type: EventType; reason: string; action: string; note: string }[] = [];

  record(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    this.events.push({ name: regarding.metadata?.name ?? '', type, reason, action, note });
  }
}
