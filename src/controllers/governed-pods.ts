// The pod cache keeps what ImagePolicies need of the pods of the workloads they govern, and
// nothing of the others: a cluster's pods are mostly not Patchline's business, and caching
// them all would make the operator's memory grow with the cluster.
//
// A workload becomes governed when a policy selecting it is created or changed, or when it is
// created or relabelled. Its pods may be running already and not change for days, so they are
// listed then by the workload's selector and cached, except those the watch has brought in the
// meantime (newer) or reported deleted (the list may predate the deletion). The first list of
// pods waits for the policies and workloads to be cached, so that it keeps the right ones: the
// workloads governed before it are not read one by one (at start, thousands of them at once
// would be refused by the API server's fairness limits), only those of them whose pods the
// first list did not bring. Reads run a few at a time.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import type { InformerSet } from '../runtime/informer-set.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import type { KubeList, KubeObject } from '../runtime/kube-types.ts';
import type { Logger } from '../runtime/logger.ts';
import { gauge, type Registry } from '../runtime/metrics.ts';
import { ownerWorkload, slimPod, type LabelSelector, type Pod, type Workload } from '../rollout/workloads.ts';
import { selectsWorkload } from './imagepolicy/select.ts';

export interface GovernedPodsOptions {
  policies: InformerSet<ImagePolicy>;
  workloads: readonly InformerSet<Workload>[];
  client: Pick<KubeClient, 'requestJson'>;
  logger: Logger;
  registry?: Registry;
}

/** A label selector as the API's labelSelector parameter; undefined when it selects nothing. */
export function selectorQuery(selector: LabelSelector | undefined): string | undefined {
  const terms = [
    ...Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(selector?.matchExpressions ?? []).map((e) => {
      switch (e.operator) {
        case 'In':
          return `${e.key} in (${(e.values ?? []).join(',')})`;
        case 'NotIn':
          return `${e.key} notin (${(e.values ?? []).join(',')})`;
        case 'Exists':
          return e.key;
        case 'DoesNotExist':
          return `!${e.key}`;
      }
    }),
  ];
  // An empty selector would list every pod of the namespace: apps/v1 workloads always have one.
  return terms.length > 0 ? terms.join(',') : undefined;
}

/** Lists of one workload's pods at once, at most (a policy selecting 500 workloads reads them 8 by 8). */
const READS_AT_ONCE = 8;

export class GovernedPods {
  private readonly o: GovernedPodsOptions;
  /** namespace/Kind/name of every governed workload. */
  private readonly governed = new Set<string>();
  private pods: InformerSet<Pod> | undefined;
  private readonly fullPods;
  /** Workloads governed before the pod cache's first list completed: read after it, if it did not bring their pods. */
  private readonly beforeFirstList = new Map<string, Workload>();
  /** Reads of newly governed workloads' pods waiting for a slot, and how many run. */
  private readonly readQueue: Workload[] = [];
  private reading = 0;

  constructor(options: GovernedPodsOptions) {
    this.o = options;
    this.fullPods = options.registry
      ? gauge(options.registry, {
          name: 'patchline_pods_governed',
          help: 'Pods cached because a policy governs their workload (the others are not kept).',
          labelNames: [] as const,
        })
      : undefined;
    for (const set of options.workloads) set.onChange((w) => this.review(w.metadata.namespace, [w]));
    options.policies.onChange(
      (p, old) => {
        const ns = p.metadata?.namespace ?? '';
        this.review(
          ns,
          options.workloads.flatMap((s) => s.inNamespace(ns)),
        );
        if (old && old.metadata?.namespace !== ns) this.review(old.metadata?.namespace ?? '', []);
      },
      (a, b) => JSON.stringify(a.spec.workloads) !== JSON.stringify(b.spec.workloads),
    );
  }

  /** The pod cache (made after this, since its transform is `shape`). */
  attach(pods: InformerSet<Pod>): void {
    this.pods = pods;
    for (const i of pods.informers) {
      i.addHandlers({ onAdd: () => this.countFull(1), onDelete: () => this.countFull(-1) });
    }
    void Promise.all(pods.informers.map((i) => i.waitForSync())).then(() => this.afterFirstList(pods));
  }

  /** Reads the pods of the workloads governed before the first list that it did not bring (a workload governed as its pages went by). */
  private afterFirstList(pods: InformerSet<Pod>): void {
    for (const [key, w] of this.beforeFirstList) {
      const owner = `${w.kind}/${w.metadata.name}`;
      if (this.governed.has(key) && !pods.inNamespace(w.metadata.namespace).some((p) => p.owner === owner))
        this.read(w);
    }
    this.beforeFirstList.clear();
  }

  private synced(): boolean {
    return this.pods !== undefined && this.pods.informers.every((i) => i.hasSynced());
  }

  /** Reads a workload's pods when a slot is free (at most READS_AT_ONCE lists at a time). */
  private read(w: Workload): void {
    this.readQueue.push(w);
    this.pump();
  }

  private pump(): void {
    while (this.reading < READS_AT_ONCE && this.readQueue.length > 0) {
      const w = this.readQueue.shift()!;
      this.reading++;
      void this.readPods(w).finally(() => {
        this.reading--;
        this.pump();
      });
    }
  }

  /** The pod informer's transform. */
  readonly shape = (received: KubeObject): Pod | undefined => {
    const meta = received.metadata ?? {};
    const owner = ownerWorkload(meta);
    if (!owner || !this.governed.has(`${meta.namespace ?? ''}/${owner}`)) return undefined;
    return slimPod(received);
  };

  /**
   * Decides again whether the given workloads (of one namespace) are governed; a deleted
   * workload is passed in as it was. Pods of newly governed workloads are read in full.
   */
  private review(namespace: string, workloads: readonly Workload[]): void {
    const policies = this.o.policies.inNamespace(namespace);
    const newlyGoverned: Workload[] = [];
    for (const w of workloads) {
      const key = `${namespace}/${w.kind}/${w.metadata.name}`;
      const exists = this.o.workloads.some((s) => s.get({ namespace, name: w.metadata.name }) === w);
      const governed = exists && policies.some((p) => selectsWorkload(p, w));
      if (governed && !this.governed.has(key)) {
        this.governed.add(key);
        newlyGoverned.push(w);
      } else if (!governed) this.governed.delete(key);
    }
    for (const w of newlyGoverned) {
      if (this.synced()) this.read(w);
      else this.beforeFirstList.set(`${namespace}/${w.kind}/${w.metadata.name}`, w);
    }
  }

  /** Lists the pods of a workload that has just become governed, and caches those not cached yet. */
  private async readPods(w: Workload): Promise<void> {
    const pods = this.pods;
    const labelSelector = selectorQuery(w.spec?.selector);
    if (!pods || !labelSelector) return;
    const namespace = w.metadata.namespace;
    const owner = `${w.kind}/${w.metadata.name}`;
    try {
      const list = await this.o.client.requestJson<KubeList<Pod>>(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
        { query: { labelSelector } },
      );
      for (const pod of list.items) {
        // Another workload's pods may match the selector too: only this one's are wanted.
        if (ownerWorkload(pod.metadata) === owner) pods.insertIfAbsent(pod);
      }
    } catch (err) {
      // Unreadable now: the pods' next events bring them; say so, since until then the
      // policy sees no pods for the workload.
      this.o.logger.warn('could not list the pods of a newly governed workload', {
        workload: `${namespace}/${owner}`,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private full = 0;

  private countFull(delta: number): void {
    this.full += delta;
    this.fullPods?.set(this.full);
  }
}
