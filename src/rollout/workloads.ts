// The workloads and pods ImagePolicies look at, as cached: only the fields Patchline reads.
// A cluster's pods and workloads outnumber everything else the operator watches, so the
// informers keep these slim copies (transform) rather than whole objects.
import { intern } from '../runtime/intern.ts';
import type { KubeObject, ManagedFieldsEntry, ObjectMeta } from '../runtime/kube-types.ts';
import type { PodLike, ContainerStatusLike } from './running.ts';
import type { WorkloadLike } from './progress.ts';
import type { SecurityContextUser } from '../verify/run-as-user.ts';

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface Workload extends KubeObject {
  kind: WorkloadKind;
  metadata: ObjectMeta & { name: string; namespace: string };
  spec?: {
    replicas?: number;
    selector?: LabelSelector;
    updateStrategy?: { type?: string; rollingUpdate?: { partition?: number } };
    template?: {
      spec?: {
        /** Only who the pod runs as (verify.runAsNonRoot). */
        securityContext?: SecurityContextUser;
        containers?: { name: string; image?: string; securityContext?: SecurityContextUser }[];
      };
    };
  };
  status?: WorkloadLike['status'];
}

/** Keeps, of a securityContext, who it runs as; undefined when it says nothing about that. */
function runAs(sc: SecurityContextUser | undefined): SecurityContextUser | undefined {
  if (!sc) return undefined;
  const out: SecurityContextUser = {};
  if (typeof sc.runAsUser === 'number') out.runAsUser = sc.runAsUser;
  if (typeof sc.runAsNonRoot === 'boolean') out.runAsNonRoot = sc.runAsNonRoot;
  return Object.keys(out).length > 0 ? out : undefined;
}

export interface Pod extends KubeObject, PodLike {
  metadata: ObjectMeta & { name: string; namespace: string };
  /** The workload that owns the pod, as Kind/name (a Deployment through its ReplicaSet). */
  owner?: string;
}

/**
 * The workload a pod belongs to, from its controller reference: a StatefulSet or DaemonSet
 * directly, a Deployment through its ReplicaSet, named <deployment>-<pod-template-hash>.
 */
export function ownerWorkload(meta: ObjectMeta): string | undefined {
  const ref = meta.ownerReferences?.find((r) => r.controller);
  if (!ref) return undefined;
  if (ref.kind === 'StatefulSet' || ref.kind === 'DaemonSet') return `${ref.kind}/${ref.name}`;
  const hash = meta.labels?.['pod-template-hash'];
  if (ref.kind === 'ReplicaSet' && hash && ref.name.endsWith(`-${hash}`))
    return `Deployment/${ref.name.slice(0, -(hash.length + 1))}`;
  return undefined;
}

const PATCHLINE_ANNOTATION = 'patchline.dev/';

const STATUS_COUNTS = [
  'observedGeneration',
  'replicas',
  'updatedReplicas',
  'availableReplicas',
  'readyReplicas',
  'desiredNumberScheduled',
  'updatedNumberScheduled',
  'numberAvailable',
] as const;

/**
 * Of a workload's status, what rolloutProgress reads: the counts, the revisions, and the
 * Progressing condition (its message only when the deadline passed — the one time it is shown).
 */
function slimWorkloadStatus(status: NonNullable<Workload['status']>): NonNullable<Workload['status']> {
  const out: NonNullable<Workload['status']> = {};
  for (const k of STATUS_COUNTS) if (status[k] !== undefined) out[k] = status[k];
  if (status.currentRevision !== undefined) out.currentRevision = status.currentRevision;
  if (status.updateRevision !== undefined) out.updateRevision = status.updateRevision;
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  if (progressing) {
    const failed = progressing.reason === 'ProgressDeadlineExceeded';
    out.conditions = [
      {
        type: intern(progressing.type),
        status: intern(progressing.status),
        reason: intern(progressing.reason),
        ...(failed && progressing.message !== undefined ? { message: progressing.message } : {}),
      },
    ];
  }
  return out;
}

interface RawWorkload {
  metadata?: ObjectMeta;
  spec?: Workload['spec'] & { strategy?: unknown };
  status?: Workload['status'];
}

const withRunAs = (sc: SecurityContextUser | undefined): { securityContext?: SecurityContextUser } =>
  sc ? { securityContext: sc } : {};

/** Keeps, of managedFields, which manager owns which container's image. */
function slimManagedFields(entries: readonly ManagedFieldsEntry[] | undefined): ManagedFieldsEntry[] | undefined {
  const out: ManagedFieldsEntry[] = [];
  for (const mf of entries ?? []) {
    const containers = (
      mf.fieldsV1 as
        | { 'f:spec'?: { 'f:template'?: { 'f:spec'?: { 'f:containers'?: Record<string, Record<string, unknown>> } } } }
        | undefined
    )?.['f:spec']?.['f:template']?.['f:spec']?.['f:containers'];
    const owned: Record<string, { 'f:image': Record<string, never> }> = {};
    for (const [key, fields] of Object.entries(containers ?? {})) {
      if (fields['f:image'] !== undefined) owned[key] = { 'f:image': {} };
    }
    if (Object.keys(owned).length === 0) continue;
    out.push({
      ...(mf.manager !== undefined ? { manager: mf.manager } : {}),
      ...(mf.operation !== undefined ? { operation: mf.operation } : {}),
      fieldsV1: { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': owned } } } },
    });
  }
  return out.length > 0 ? out : undefined;
}

/** The transform for a workload informer: list items carry no kind, so it is set here. */
export function slimWorkload(kind: WorkloadKind): (obj: KubeObject) => Workload {
  return (obj) => {
    const w = obj as RawWorkload;
    const m = w.metadata ?? {};
    const annotations = Object.fromEntries(
      Object.entries(m.annotations ?? {}).filter(([k]) => k.startsWith(PATCHLINE_ANNOTATION)),
    );
    const managedFields = slimManagedFields(m.managedFields);
    const spec = w.spec ?? {};
    return {
      kind,
      metadata: {
        name: m.name ?? '',
        namespace: intern(m.namespace ?? ''),
        ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
        ...(m.generation !== undefined ? { generation: m.generation } : {}),
        ...(m.labels ? { labels: m.labels } : {}),
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
        ...(managedFields ? { managedFields } : {}),
      },
      spec: {
        ...(spec.replicas !== undefined ? { replicas: spec.replicas } : {}),
        ...(spec.selector ? { selector: spec.selector } : {}),
        ...(spec.updateStrategy ? { updateStrategy: spec.updateStrategy } : {}),
        template: {
          spec: {
            ...withRunAs(runAs(spec.template?.spec?.securityContext)),
            containers: (spec.template?.spec?.containers ?? []).map((c) => ({
              name: intern(c.name),
              ...(c.image !== undefined ? { image: intern(c.image) } : {}),
              ...withRunAs(runAs(c.securityContext)),
            })),
          },
        },
      },
      ...(w.status ? { status: slimWorkloadStatus(w.status) } : {}),
    };
  };
}

/** The transform for the pod informer: labels, phase and each container's imageID and readiness. */
export function slimPod(obj: KubeObject): Pod {
  const p = obj as { metadata?: ObjectMeta; status?: { phase?: string; containerStatuses?: ContainerStatusLike[] } };
  const m = p.metadata ?? {};
  const owner = ownerWorkload(m);
  return {
    ...(owner ? { owner } : {}),
    metadata: {
      name: m.name ?? '',
      namespace: intern(m.namespace ?? ''),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    },
    status: {
      ...(p.status?.phase ? { phase: intern(p.status.phase) } : {}),
      containerStatuses: (p.status?.containerStatuses ?? []).map((c) => ({
        name: intern(c.name),
        ...(c.image !== undefined ? { image: intern(c.image) } : {}),
        ...(c.imageID ? { imageID: intern(c.imageID) } : {}),
        ready: c.ready === true,
      })),
    },
  };
}

/** Whether a pod change matters to a policy: what it runs, its readiness, its phase, its labels. */
export function podChanged(a: Pod, b: Pod): boolean {
  const view = (p: Pod) =>
    JSON.stringify([p.metadata.labels ?? {}, p.metadata.deletionTimestamp ?? '', p.status ?? {}]);
  return view(a) !== view(b);
}
