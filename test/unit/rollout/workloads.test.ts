import assert from 'node:assert/strict';
import { rolloutProgress } from '../../../src/rollout/progress.ts';
import { slimWorkload } from '../../../src/rollout/workloads.ts';

const deployment = (progressing: Record<string, string>) => ({
  metadata: { name: 'web', namespace: 'shop', generation: 2, resourceVersion: '9', uid: 'u1' },
  spec: { replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'r.example/web@sha256:aa' }] } } },
  status: {
    observedGeneration: 2,
    replicas: 2,
    updatedReplicas: 2,
    readyReplicas: 2,
    availableReplicas: 2,
    conditions: [
      {
        type: 'Available',
        status: 'True',
        reason: 'MinimumReplicasAvailable',
        message: 'Deployment has minimum availability.',
        lastUpdateTime: '2026-12-06T10:00:00Z',
        lastTransitionTime: '2026-12-06T10:00:00Z',
      },
      { ...progressing, lastUpdateTime: '2026-12-06T10:00:00Z', lastTransitionTime: '2026-12-06T10:00:00Z' },
    ],
  },
});

describe('slimWorkload', () => {
  const slim = slimWorkload('Deployment');

  it('keeps of the status the counts and the Progressing condition, without its message while it progresses', () => {
    const w = slim(
      deployment({
        type: 'Progressing',
        status: 'True',
        reason: 'NewReplicaSetAvailable',
        message: 'ReplicaSet "web-5d9c" has successfully progressed.',
      }),
    );
    assert.deepEqual(w.status, {
      observedGeneration: 2,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }],
    });
    assert.deepEqual(rolloutProgress(w), { state: 'Complete', message: '2 replicas updated and available' });
  });

  it('keeps the message of a deadline that passed: it is what the policy reports', () => {
    const w = slim(
      deployment({
        type: 'Progressing',
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: 'ReplicaSet "web-5d9c" has timed out progressing.',
      }),
    );
    assert.deepEqual(rolloutProgress(w), {
      state: 'Failed',
      message: 'progress deadline exceeded: ReplicaSet "web-5d9c" has timed out progressing.',
    });
  });
});
