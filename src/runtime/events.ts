// Kubernetes Events (events.k8s.io/v1) about the resources a controller manages.
// A repeat of the same event (same object, type, reason and note) within ten minutes is
// folded into the first one's series (count and last time) with a patch instead of a new
// object, as client-go's recorder does. Recording never throws: an event that cannot be
// written is logged and dropped, so that it can never fail a reconcile.
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

export interface KubeEventRecorderOptions {
  client: KubeClient;
  /** reportingController, for example patchline.dev/operator. */
  controller: string;
  /** reportingInstance: this replica's name. */
  instance: string;
  logger: Logger;
  registry?: Registry;
  now?: () => number;
}

export class KubeEventRecorder implements EventRecorder {
  private readonly options: KubeEventRecorderOptions;
  private readonly series = new Map<string, SeriesEntry>();
  private pending = new Set<Promise<void>>();
  private readonly written;

  constructor(options: KubeEventRecorderOptions) {
    this.options = options;
    this.written = options.registry
      ? counter(options.registry, {
          name: 'patchline_events_total',
          help: 'Kubernetes Events recorded, by type and reason.',
          labelNames: ['type', 'reason'] as const,
        })
      : undefined;
  }

  record(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    const p = this.write(regarding, type, reason, action, note.slice(0, MAX_NOTE)).finally(() =>
      this.pending.delete(p),
    );
    this.pending.add(p);
  }

  /** Waits for the events being written, at shutdown and in tests. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async write(
    regarding: KubeObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const meta = regarding.metadata ?? {};
    const namespace = meta.namespace ?? 'default';
    const now = (this.options.now ?? Date.now)();
    const key = [meta.uid, type, reason, note].join('\u0000');
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
            metadata: { name: `${meta.name ?? 'object'}.${eventSuffix(now)}`, namespace },
            eventTime: formatMicroTime(now),
            type,
            reason,
            action,
            note,
            reportingController: this.options.controller,
            reportingInstance: this.options.instance,
            regarding: {
              apiVersion: regarding.apiVersion,
              kind: regarding.kind,
              name: meta.name,
              namespace: meta.namespace,
              uid: meta.uid,
              resourceVersion: meta.resourceVersion,
            },
          },
        },
      );
      if (created.metadata?.name) {
        this.series.set(key, { name: created.metadata.name, namespace, count: 1, lastSeen: now });
      }
    } catch (err) {
      this.options.logger.warn('could not record event', {
        reason,
        resource: `${namespace}/${meta.name ?? ''}`,
        error: errorMessage(toKubeError(err)),
      });
      // A series whose event vanished starts afresh next time.
      if (previous) this.series.delete(key);
    }
  }

  private prune(now: number): void {
    if (this.series.size < 1000) return;
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
