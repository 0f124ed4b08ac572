// The ImagePolicy rollout decision, step by step: each step's workload status becomes the
// next step's previous status, as the reconciler would persist it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import {
  decideRollout,
  type ObservedContainer,
  type RolloutInput,
} from '../../../src/controllers/imagepolicy/rollout.ts';
import { CrdValidator, loadCrd } from '../../support/crd-validator.ts';
import { ROOT } from '../../support/fixtures.ts';

const validator = new CrdValidator(loadCrd(join(ROOT, 'crds', 'imagepolicies.patchline.dev.yaml')));
const REPO = 'registry.example/shop/web';
const OLD = `sha256:${'0'.repeat(64)}`;
const NEW = `sha256:${'1'.repeat(64)}`;
const NEWER = `sha256:${'2'.repeat(64)}`;
const t0 = new Date('2026-11-22T10:00:00Z');
const at = (s: number): Date => new Date(t0.getTime() + s * 1000);

function policy(rollout: ImagePolicy['spec']['rollout'] = {}, annotations?: Record<string, string>): ImagePolicy {
  return validator.withDefaults({
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'web', namespace: 'shop', generation: 1, ...(annotations ? { annotations } : {}) },
    spec: { image: REPO, follow: { tag: '1.4' }, workloads: { selector: { matchLabels: { app: 'web' } } }, rollout },
  });
}

const complete = { state: 'Complete' as const, message: '3 replicas updated and available' };
const progressing = { state: 'Progressing' as const, message: '1 of 3 replicas updated' };

function container(name: string, digest: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    kind: 'Deployment',
    name,
    container: 'web',
    specImage: `${REPO}@${digest}`,
    running: { digests: [{ digest, pods: 3, ready: 3 }], unknown: 0 },
    progress: complete,
    ...over,
  };
}

class Policy {
  p: ImagePolicy;
  constructor(p: ImagePolicy) {
    this.p = p;
  }
  step(now: Date, observed: ObservedContainer[], over: Partial<RolloutInput> = {}) {
    const d = decideRollout({
      policy: this.p,
      now,
      accepted: { repository: REPO, digest: NEW },
      observed,
      windowOpen: true,
      retryRequested: false,
      ...over,
    });
    this.p = {
      ...this.p,
      status: { ...this.p.status, workloads: d.workloads, ...(d.failedDigest ? { failedDigest: d.failedDigest } : {}) },
    };
    if (!d.failedDigest) delete this.p.status!.failedDigest;
    assert.deepEqual(validator.validate(this.p), [], 'the status is valid for the CRD');
    return d;
  }
  state(name: string) {
    return this.p.status?.workloads?.find((w) => w.name === name);
  }
}

describe('ImagePolicy rollout decision', () => {
  it('waits without an accepted digest', () => {
    const d = decideRollout({
      policy: policy(),
      now: t0,
      observed: [container('a', OLD)],
      windowOpen: true,
      retryRequested: false,
    });
    assert.equal(d.workloads[0]?.state, 'Pending');
    assert.deepEqual(d.pins, []);
  });

  it('tries a pin the API server did not apply again, announcing the rollout once', () => {
    const p = new Policy(policy());
    const d1 = p.step(t0, [container('a', OLD)]);
    assert.deepEqual(
      d1.events.map((e) => e.reason),
      ['RolloutStarted'],
    );
    // The pin failed (the API server was restarting): the workload still names the old digest.
    const d2 = p.step(at(5), [container('a', OLD)]);
    assert.deepEqual(
      d2.pins.map((x) => [x.name, x.image]),
      [['a', `${REPO}@${NEW}`]],
      'tried again',
    );
    assert.deepEqual(d2.events, [], 'not announced again');
    assert.equal(p.state('a')?.state, 'Rolling');
  });

  it('pins at most maxConcurrent workloads, follows them to UpToDate, then the rest', () => {
    const p = new Policy(policy({ maxConcurrent: 2 }));
    const d1 = p.step(t0, [container('c', OLD), container('a', OLD), container('b', OLD)]);
    assert.deepEqual(
      d1.pins.map((x) => [x.name, x.image, x.previousImage]),
      [
        ['a', `${REPO}@${NEW}`, `${REPO}@${OLD}`],
        ['b', `${REPO}@${NEW}`, `${REPO}@${OLD}`],
      ],
    );
    assert.equal(p.state('a')?.previousDigest, OLD, 'the rollback target');
    assert.equal(p.state('c')?.state, 'Pending');
    assert.match(p.state('c')?.message ?? '', /2 workloads rolling \(maxConcurrent 2\)/);
    assert.deepEqual(
      d1.events.map((e) => e.reason),
      ['RolloutStarted', 'RolloutStarted'],
    );

    // a is done, b still rolling (one pod on the old digest): c still waits.
    const mixed = {
      digests: [
        { digest: NEW, pods: 2, ready: 2 },
        { digest: OLD, pods: 1, ready: 1 },
      ],
      unknown: 0,
    };
    const d2 = p.step(at(30), [container('a', NEW), container('b', NEW, { running: mixed }), container('c', OLD)]);
    assert.equal(p.state('a')?.state, 'UpToDate');
    assert.equal(p.state('b')?.state, 'Rolling', 'complete by status, but a pod still runs the old digest');
    assert.deepEqual(
      d2.pins.map((x) => x.name),
      ['c'],
      'a freed its slot',
    );
    assert.deepEqual(
      d2.events.map((e) => e.reason),
      ['RolledOut', 'RolloutStarted'],
    );
    assert.deepEqual(d2.upToDate, { count: 1, of: 3 });

    const d3 = p.step(at(60), [container('a', NEW), container('b', NEW), container('c', NEW)]);
    assert.deepEqual(d3.upToDate, { count: 3, of: 3 });
    assert.deepEqual(d3.pins, []);
    assert.equal(p.state('a')?.since, '2026-11-22T10:00:30Z', 'since is kept while the state holds');
  });

  it('rolls a failing workload back, remembers the digest, and holds the others until a newer one', () => {
    const p = new Policy(policy({ progressDeadline: '5m' }));
    p.step(t0, [container('a', OLD), container('b', OLD)], {
      policy: policy({ progressDeadline: '5m', maxConcurrent: 1 }),
    });
    p.p = { ...p.p, spec: { ...p.p.spec, rollout: { ...p.p.spec.rollout, maxConcurrent: 1 } } };
    const stuck = {
      digests: [
        { digest: NEW, pods: 1, ready: 0 },
        { digest: OLD, pods: 3, ready: 3 },
      ],
      unknown: 0,
    };
    const rolling = p.step(at(60), [
      container('a', NEW, { progress: progressing, running: stuck }),
      container('b', OLD),
    ]);
    assert.equal(p.state('a')?.state, 'Rolling');
    assert.ok(rolling.requeueAfterMs! <= 10_000);
    // Past the deadline: failed, rolled back to the previous digest.
    const failed = p.step(at(400), [
      container('a', NEW, { progress: progressing, running: stuck }),
      container('b', OLD),
    ]);
    assert.deepEqual(failed.pins, [
      {
        kind: 'Deployment',
        name: 'a',
        container: 'web',
        image: `${REPO}@${OLD}`,
        previousImage: `${REPO}@${NEW}`,
        rollback: true,
      },
    ]);
    assert.equal(failed.failedDigest, NEW);
    assert.equal(p.state('a')?.state, 'Failed');
    assert.match(p.state('a')?.message ?? '', /after 5m .*rolled back to sha256:000000000000/);
    assert.deepEqual(
      failed.events.map((e) => [e.type, e.reason]),
      [['Warning', 'RolledBack']],
    );
    // Rolled back: a stays Failed, b is held back, nothing is retried.
    const held = p.step(at(460), [container('a', OLD), container('b', OLD)]);
    assert.deepEqual(held.pins, []);
    assert.equal(p.state('a')?.state, 'Failed');
    assert.equal(p.state('b')?.state, 'Blocked');
    // A requested reconcile retries it; so does a newer digest.
    assert.equal(
      decideRollout({
        policy: p.p,
        now: at(500),
        accepted: { repository: REPO, digest: NEW },
        observed: [container('a', OLD)],
        windowOpen: true,
        retryRequested: true,
      }).pins.length,
      1,
    );
    const newer = decideRollout({
      policy: p.p,
      now: at(500),
      accepted: { repository: REPO, digest: NEWER },
      observed: [container('a', OLD), container('b', OLD)],
      windowOpen: true,
      retryRequested: false,
    });
    assert.equal(newer.failedDigest, undefined);
    assert.equal(newer.pins[0]?.image, `${REPO}@${NEWER}`);
  });

  it('fails at once when the controller gives up, and does not roll back when told not to', () => {
    const p = new Policy(policy({ rollbackOnFailure: false }));
    p.step(t0, [container('a', OLD)]);
    const d = p.step(at(10), [
      container('a', NEW, { progress: { state: 'Failed', message: 'progress deadline exceeded' } }),
    ]);
    assert.deepEqual(d.pins, []);
    assert.equal(p.state('a')?.state, 'Failed');
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['RolloutFailed'],
    );
  });

  it('Manual mode waits for the approval annotation naming the digest; GitOps mode reports; the window holds', () => {
    const manual = decideRollout({
      policy: policy({ mode: 'Manual' }),
      now: t0,
      accepted: { repository: REPO, digest: NEW },
      observed: [container('a', OLD)],
      windowOpen: true,
      retryRequested: false,
    });
    assert.equal(manual.workloads[0]?.state, 'PendingApproval');
    assert.match(manual.workloads[0]?.message ?? '', new RegExp(`patchline.dev/approve-digest=${NEW}`));
    const approved = decideRollout({
      policy: policy({ mode: 'Manual' }, { 'patchline.dev/approve-digest': NEW }),
      now: t0,
      accepted: { repository: REPO, digest: NEW },
      observed: [container('a', OLD)],
      windowOpen: true,
      retryRequested: false,
    });
    assert.equal(approved.pins.length, 1);
    const oldApproval = decideRollout({
      policy: policy({ mode: 'Manual' }, { 'patchline.dev/approve-digest': OLD }),
      now: t0,
      accepted: { repository: REPO, digest: NEW },
      observed: [container('a', OLD)],
      windowOpen: true,
      retryRequested: false,
    });
    assert.equal(oldApproval.pins.length, 0, 'an approval is for one digest');
    const gitops = decideRollout({
      policy: policy({ mode: 'GitOps' }),
      now: t0,
      accepted: { repository: REPO, digest: NEW },
      observed: [container('a', OLD)],
      windowOpen: true,
      retryRequested: false,
    });
    assert.match(gitops.workloads[0]?.message ?? '', /GitOps mode/);
    assert.equal(gitops.pins.length, 0);
    const closed = decideRollout({
      policy: policy(),
      now: t0,
      accepted: { repository: REPO, digest: NEW },
      observed: [container('a', OLD)],
      windowOpen: false,
      retryRequested: false,
    });
    assert.equal(closed.workloads[0]?.message, 'waiting for the rollout window');
  });

  it('re-pins once when another manager sets the image back, then stops fighting and names it', () => {
    const p = new Policy(policy());
    p.step(t0, [container('a', OLD)]);
    p.step(at(30), [container('a', NEW)]);
    assert.equal(p.state('a')?.state, 'UpToDate');
    const reverted = (pinnedReverts = 0): ObservedContainer =>
      container('a', OLD, { imageOwner: 'argocd-controller', pinnedImage: `${REPO}@${NEW}`, pinnedReverts });
    const first = p.step(at(60), [reverted()]);
    assert.equal(first.pins.length, 1, 'pinned again once');
    assert.equal(first.pins[0]?.reverts, 1, 'the pin records the reverts counted');
    assert.equal(p.state('a')?.reverts, 1);
    // A stale copy (from before the re-pin) is not a second revert.
    p.step(at(61), [reverted(0)]);
    assert.equal(p.state('a')?.reverts, 1);
    assert.deepEqual(
      first.events.map((e) => e.reason),
      ['ImageReverted', 'RolloutStarted'],
    );
    p.step(at(90), [container('a', NEW)]);
    const second = p.step(at(120), [reverted(1)]);
    assert.deepEqual(second.pins, []);
    assert.equal(p.state('a')?.state, 'Blocked');
    p.step(at(150), [reverted(1)]);
    assert.equal(p.state('a')?.reverts, 2, 'counted once, however often it is looked at');
    assert.equal(p.state('a')?.revertedBy, 'argocd-controller');
    assert.match(p.state('a')?.message ?? '', /argocd-controller keeps setting the image back/);
  });

  it('does not count a stale copy of the object from before the pin as a revert', () => {
    const p = new Policy(policy());
    p.step(t0, [container('a', OLD)]);
    // The informer has not seen the pin yet: no pin annotation on this copy.
    const d = p.step(at(1), [container('a', OLD, { imageOwner: 'gitops' })]);
    assert.equal(p.state('a')?.reverts, undefined);
    assert.equal(d.pins.length, 1, 'the same pin again, which server-side apply makes a no-op');
  });
});
