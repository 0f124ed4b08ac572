import assert from 'node:assert/strict';
import { rolloutProgress, type WorkloadLike } from '../../../src/rollout/progress.ts';

const deployment = (status: WorkloadLike['status'], generation = 2, replicas = 3): WorkloadLike => ({
  kind: 'Deployment',
  metadata: { name: 'web', generation },
  spec: { replicas },
  status: { observedGeneration: 2, ...status },
});

describe('rollout progress', () => {
  it('Deployment: waits for the controller, new replicas, old ones gone, availability', () => {
    const state = (w: WorkloadLike) => rolloutProgress(w).state;
    assert.equal(state(deployment({}, 3)), 'Progressing', 'spec not observed yet');
    assert.equal(rolloutProgress(deployment({ replicas: 4, updatedReplicas: 1 })).message, '1 of 3 replicas updated');
    assert.equal(
      rolloutProgress(deployment({ replicas: 4, updatedReplicas: 3 })).message,
      '1 old replicas pending termination',
    );
    assert.equal(
      rolloutProgress(deployment({ replicas: 3, updatedReplicas: 3, availableReplicas: 2 })).message,
      '2 of 3 updated replicas available',
    );
    assert.equal(state(deployment({ replicas: 3, updatedReplicas: 3, availableReplicas: 3 })), 'Complete');
    const failed = rolloutProgress(
      deployment({
        replicas: 4,
        updatedReplicas: 1,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "web-2" has timed out progressing.',
          },
        ],
      }),
    );
    assert.deepEqual(failed, {
      state: 'Failed',
      message: 'progress deadline exceeded: ReplicaSet "web-2" has timed out progressing.',
    });
  });

  it('StatefulSet: revisions, readiness, partitions, OnDelete', () => {
    const sts = (status: WorkloadLike['status'], spec: WorkloadLike['spec'] = { replicas: 3 }): WorkloadLike => ({
      kind: 'StatefulSet',
      metadata: { generation: 1 },
      spec,
      status: { observedGeneration: 1, ...status },
    });
    assert.equal(rolloutProgress(sts({ readyReplicas: 2 })).state, 'Progressing');
    assert.equal(
      rolloutProgress(sts({ readyReplicas: 3, currentRevision: 'a', updateRevision: 'b', updatedReplicas: 1 })).message,
      '1 of 3 pods at revision b',
    );
    assert.equal(
      rolloutProgress(sts({ readyReplicas: 3, currentRevision: 'b', updateRevision: 'b', updatedReplicas: 3 })).state,
      'Complete',
    );
    const partitioned = { replicas: 3, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } };
    assert.equal(
      rolloutProgress(
        sts({ readyReplicas: 3, updatedReplicas: 1, currentRevision: 'a', updateRevision: 'b' }, partitioned),
      ).state,
      'Complete',
    );
    assert.equal(rolloutProgress(sts({ readyReplicas: 3, updatedReplicas: 0 }, partitioned)).state, 'Progressing');
    assert.match(
      rolloutProgress(sts({ readyReplicas: 3 }, { replicas: 3, updateStrategy: { type: 'OnDelete' } })).message,
      /OnDelete/,
    );
  });

  it('DaemonSet: every scheduled node updated and available', () => {
    const ds = (status: WorkloadLike['status']): WorkloadLike => ({
      kind: 'DaemonSet',
      metadata: { generation: 1 },
      status: { observedGeneration: 1, ...status },
    });
    assert.equal(
      rolloutProgress(ds({ desiredNumberScheduled: 2, updatedNumberScheduled: 1, numberAvailable: 2 })).message,
      '1 of 2 nodes updated',
    );
    assert.equal(
      rolloutProgress(ds({ desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 1 })).message,
      '1 of 2 updated pods available',
    );
    assert.equal(
      rolloutProgress(ds({ desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2 })).state,
      'Complete',
    );
    assert.equal(rolloutProgress({ kind: 'CronJob' }).state, 'Failed');
  });
});
