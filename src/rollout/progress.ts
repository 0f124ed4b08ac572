// How a workload's rollout stands, from its status alone — the judgement `kubectl rollout
// status` makes, for Deployments, StatefulSets and DaemonSets. Pure. Whether the pods really
// run the new digest is checked separately, from their imageIDs (running.ts): a rollout that
// is "complete" while a pod still reports the old digest is not done.

export type RolloutProgress =
  | { state: 'Complete'; message: string }
  | { state: 'Progressing'; message: string }
  | { state: 'Failed'; message: string };

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

export interface WorkloadLike {
  kind: string;
  metadata?: { name?: string; generation?: number };
  spec?: {
    replicas?: number;
    updateStrategy?: { type?: string; rollingUpdate?: { partition?: number } };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    conditions?: Condition[];
  };
}

const n = (v: number | undefined): number => v ?? 0;

export function rolloutProgress(w: WorkloadLike): RolloutProgress {
  const status = w.status ?? {};
  const generation = w.metadata?.generation ?? 0;
  if (n(status.observedGeneration) < generation) {
    return { state: 'Progressing', message: 'waiting for the controller to see the new spec' };
  }
  switch (w.kind) {
    case 'Deployment': {
      const progressing = status.conditions?.find((c) => c.type === 'Progressing');
      if (progressing?.reason === 'ProgressDeadlineExceeded') {
        return { state: 'Failed', message: `progress deadline exceeded: ${progressing.message ?? ''}`.trim() };
      }
      const want = w.spec?.replicas ?? 1;
      if (n(status.updatedReplicas) < want) {
        return { state: 'Progressing', message: `${n(status.updatedReplicas)} of ${want} replicas updated` };
      }
      if (n(status.replicas) > n(status.updatedReplicas)) {
        return {
          state: 'Progressing',
          message: `${n(status.replicas) - n(status.updatedReplicas)} old replicas pending termination`,
        };
      }
      if (n(status.availableReplicas) < n(status.updatedReplicas)) {
        return {
          state: 'Progressing',
          message: `${n(status.availableReplicas)} of ${n(status.updatedReplicas)} updated replicas available`,
        };
      }
      return { state: 'Complete', message: `${want} replicas updated and available` };
    }
    case 'StatefulSet': {
      if (w.spec?.updateStrategy?.type === 'OnDelete') {
        return { state: 'Progressing', message: 'the OnDelete update strategy waits for pods to be deleted by hand' };
      }
      const want = w.spec?.replicas ?? 1;
      if (n(status.readyReplicas) < want) {
        return { state: 'Progressing', message: `${n(status.readyReplicas)} of ${want} pods ready` };
      }
      const partition = w.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
      if (partition > 0) {
        const expected = want - partition;
        return n(status.updatedReplicas) < expected
          ? {
              state: 'Progressing',
              message: `${n(status.updatedReplicas)} of ${expected} pods updated (partition ${partition})`,
            }
          : { state: 'Complete', message: `${expected} pods updated (partition ${partition})` };
      }
      if (status.updateRevision !== status.currentRevision) {
        return {
          state: 'Progressing',
          message: `${n(status.updatedReplicas)} of ${want} pods at revision ${status.updateRevision ?? '?'}`,
        };
      }
      return { state: 'Complete', message: `${want} pods updated and ready` };
    }
    case 'DaemonSet': {
      if (w.spec?.updateStrategy?.type === 'OnDelete') {
        return { state: 'Progressing', message: 'the OnDelete update strategy waits for pods to be deleted by hand' };
      }
      const want = n(status.desiredNumberScheduled);
      if (n(status.updatedNumberScheduled) < want) {
        return { state: 'Progressing', message: `${n(status.updatedNumberScheduled)} of ${want} nodes updated` };
      }
      if (n(status.numberAvailable) < want) {
        return { state: 'Progressing', message: `${n(status.numberAvailable)} of ${want} updated pods available` };
      }
      return { state: 'Complete', message: `${want} nodes updated and available` };
    }
    default:
      return { state: 'Failed', message: `cannot follow the rollout of a ${w.kind}` };
  }
}
