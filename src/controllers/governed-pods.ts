// The pod cache keeps what ImagePolicies need of the pods of the workloads they govern, and
// next to nothing of the others: a cluster's pods are mostly not Patchline's business, and
// caching them all in full would make the operator's memory grow with the cluster.
//
//   - a pod of a governed workload: the slim pod (labels, phase, each container's image ID);
//   - a pod of any other Deployment, StatefulSet or DaemonSet: a stub (name, owner,
//     resourceVersion), so that when a policy comes to govern its workload the pods to read
//     are known without a relist;
//   - a pod of nothing a policy can select (a bare pod, a Job's): not kept.
//
// A workload becomes governed when a policy selecting it is created or changed, or when it is
// created or relabelled; its stubs are then read again one GET each and cached in full, unless
// a watch event got there first (a stub is only ever replaced, never a full pod). The first
// list of pods waits for the policies and workloads to be cached, so that it is shaped right.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import type { InformerSet } from '../runtime/informer-set.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import type { KubeObject, ObjectMeta } from '../runtime/kube-types.ts';
import type { Logger } from '../runtime/logger.ts';
import { gauge, type Registry } from '../runtime/metrics.ts';
import { ownerWorkload, slimPod, type Pod, type Workload } from '../rollout/workloads.ts';
import { selectsWorkload } from './imagepolicy/select.ts';

export interface GovernedPodsOptions {
  policies: InformerSet<ImagePolicy>;
  workloads: readonly InformerSet<Workload>[];
  client: Pick<KubeClient, 'requestJson'>;
  logger: Logger;
  registry?: Registry;
}

/** A pod of a workload no policy governs: enough to find it again. */
function stubPod(meta: ObjectMeta, owner: string): Pod {
  return {
    owner,
    stub: true,
    metadata: {
      name: meta.name ?? '',
      namespace: meta.namespace ?? '',
      ...(meta.resourceVersion !== undefined ? { resourceVersion: meta.resourceVersion } : {}),
    },
  };
}

export class GovernedPods {
  private readonly o: GovernedPodsOptions;
  /** namespace/Kind/name of every governed workload. */
  private readonly governed = new Set<string>();
  private pods: InformerSet<Pod> | undefined;
  private readonly fullPods;

  constructor(options: GovernedPodsOptions) {
    this.o = options;
    this.fullPods = options.registry
      ? gauge(options.registry, {
          name: 'patchline_pods_governed',
          help: 'Pods cached in full because a policy governs their workload (the others are kept as stubs or not at all).',
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

  /** The cache the stubs live in (made after this, since its transform is `shape`). */
  attach(pods: InformerSet<Pod>): void {
    this.pods = pods;
    const full = (p: Pod): number => (p.stub ? 0 : 1);
    for (const i of pods.informers) {
      i.addHandlers({
        onAdd: (p) => this.countFull(full(p)),
        onUpdate: (a, b) => this.countFull(full(b) - full(a)),
        onDelete: (p) => this.countFull(-full(p)),
      });
    }
  }

  /** The pod informer's transform. */
  readonly shape = (received: KubeObject): Pod | undefined => {
    const meta = received.metadata ?? {};
    const owner = ownerWorkload(meta);
    if (!owner) return undefined;
    return this.governed.has(`${meta.namespace ?? ''}/${owner}`) ? slimPod(received) : stubPod(meta, owner);
  };

  /** Whether a policy governs the workload now (and has since the last review). */
  governs(namespace: string, owner: string): boolean {
    return this.governed.has(`${namespace}/${owner}`);
  }

  /**
   * Decides again whether the given workloads (of one namespace) are governed; a deleted
   * workload is passed in as it was. Pods of newly governed workloads are read in full.
   */
  private review(namespace: string, workloads: readonly Workload[]): void {
    const policies = this.o.policies.inNamespace(namespace);
    const newlyGoverned = new Set<string>();
    for (const w of workloads) {
      const key = `${namespace}/${w.kind}/${w.metadata.name}`;
      const exists = this.o.workloads.some((s) => s.get({ namespace, name: w.metadata.name }) === w);
      const governed = exists && policies.some((p) => selectsWorkload(p, w));
      if (governed && !this.governed.has(key)) {
        this.governed.add(key);
        newlyGoverned.add(`${w.kind}/${w.metadata.name}`);
      } else if (!governed) this.governed.delete(key);
    }
    if (newlyGoverned.size > 0) void this.readInFull(namespace, newlyGoverned);
  }

  private async readInFull(namespace: string, owners: ReadonlySet<string>): Promise<void> {
    const pods = this.pods;
    if (!pods) return;
    const stubs = pods.inNamespace(namespace).filter((p) => p.stub && owners.has(p.owner ?? ''));
    for (const stub of stubs) {
      const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(stub.metadata.name)}`;
      try {
        const pod = await this.o.client.requestJson<Pod>('GET', path);
        pods.refresh(pod, (cached) => cached.stub === true);
      } catch (err) {
        // Gone meanwhile (the watch says so too), or unreadable now: its next event brings it.
        this.o.logger.debug('could not read a newly governed pod', {
          pod: `${namespace}/${stub.metadata.name}`,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  private full = 0;

  private countFull(delta: number): void {
    if (delta === 0) return;
    this.full += delta;
    this.fullPods?.set(this.full);
  }

  /** Pods cached in full (the others are stubs). */
  fullCount(): number {
    return this.full;
  }
}
