// The rollout decision's steps one at a time, as tables: a container as observed (and its
// status from the last decision), the step, and what it decided. The decision as a whole is
// tested in rollout-decision.test.ts.
import assert from 'node:assert/strict';
import type { ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import {
  completeRollout,
  containerDraft,
  countRevert,
  failRollout,
  holdFailedDigest,
  keepRolling,
  pin,
  startRollout,
  stayFailed,
  stopRevertLoop,
  waitForApproval,
  followGit,
  waitForSlot,
  waitForWindow,
  type ContainerDraft,
  type ObservedContainer,
  type RolloutInput,
  type WorkloadStatus,
} from '../../../src/controllers/imagepolicy/rollout.ts';
import type { Step } from '../../../src/controllers/steps.ts';
import { stepTable } from '../../support/step-table.ts';

const REPO = 'registry.example/shop/web';
const OLD = `sha256:${'0'.repeat(64)}`;
const NEW = `sha256:${'1'.repeat(64)}`;
const now = new Date('2026-11-22T10:00:00Z');
const ago = (s: number): string => new Date(now.getTime() - s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

interface Case {
  rollout?: NonNullable<ImagePolicy['spec']['rollout']>;
  annotations?: Record<string, string>;
  previous?: Partial<WorkloadStatus>;
  failedDigest?: string;
  observed?: Partial<ObservedContainer>;
  input?: Partial<RolloutInput>;
  /** Workloads already rolling when this container is decided. */
  rolling?: string[];
}

function draft(c: Case = {}): ContainerDraft {
  const policy: ImagePolicy = {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'web', namespace: 'shop', ...(c.annotations ? { annotations: c.annotations } : {}) },
    spec: { image: REPO, follow: { tag: '1.4' }, workloads: {}, ...(c.rollout ? { rollout: c.rollout } : {}) },
    status: {
      workloads: c.previous ? [{ kind: 'Deployment', name: 'web', container: 'web', ...c.previous }] : [],
      ...(c.failedDigest ? { failedDigest: c.failedDigest } : {}),
    },
  };
  const observed: ObservedContainer = {
    kind: 'Deployment',
    name: 'web',
    container: 'web',
    specImage: `${REPO}@${OLD}`,
    running: { digests: [{ digest: OLD, pods: 2, ready: 2 }], unknown: 0 },
    progress: { state: 'Complete', message: '2 replicas available' },
    ...c.observed,
  };
  const accepted = { repository: REPO, digest: NEW };
  const input: RolloutInput = {
    policy,
    now,
    accepted,
    observed: [observed],
    windowOpen: true,
    retryRequested: false,
    ...c.input,
  };
  const d = startRollout(input, accepted);
  for (const w of c.rolling ?? []) d.rolling.add(w);
  return containerDraft(d, observed);
}

const onNew = (over: Partial<ObservedContainer> = {}): Partial<ObservedContainer> => ({
  specImage: `${REPO}@${NEW}`,
  running: { digests: [{ digest: NEW, pods: 2, ready: 2 }], unknown: 0 },
  ...over,
});

interface Row {
  name: string;
  case: Case;
  outcome: 'next' | 'done';
  expect?: (c: ContainerDraft) => void;
}

function table(step: Step<ContainerDraft>, rows: Row[]): void {
  stepTable(
    step,
    rows.map((r) => ({ ...r, draft: () => draft(r.case) })),
  );
}

const state = (c: ContainerDraft): [string | undefined, string | undefined] => [
  c.rollout.workloads[0]?.state,
  c.rollout.workloads[0]?.message,
];

describe('rollout steps', () => {
  describe('the container status a draft starts from', () => {
    it('says when the running image was built, only while every pod runs that one digest', () => {
      const builtAt = '2026-10-01T08:00:00.000Z';
      assert.equal(draft({ observed: { builtAt } }).status.builtAt, builtAt);
      const mixed = {
        builtAt,
        running: {
          digests: [
            { digest: OLD, pods: 1, ready: 1 },
            { digest: NEW, pods: 1, ready: 0 },
          ],
          unknown: 0,
        },
      };
      assert.equal(draft({ observed: mixed }).status.builtAt, undefined);
      assert.equal(draft().status.builtAt, undefined);
    });
  });

  describe('stayFailed', () => {
    table(stayFailed, [
      {
        name: 'a failed rollout being undone stays Failed with its message (GitOps: the revert not applied yet)',
        case: { observed: onNew(), failedDigest: NEW, previous: { state: 'Failed', message: 'rollout failed: x' } },
        outcome: 'done',
        expect: (c) => assert.deepEqual(state(c), ['Failed', 'rollout failed: x']),
      },
      {
        name: 'a requested reconcile retries it',
        case: {
          observed: onNew(),
          failedDigest: NEW,
          previous: { state: 'Failed' },
          input: { retryRequested: true },
        },
        outcome: 'next',
      },
    ]);
  });

  describe('completeRollout', () => {
    table(completeRollout, [
      {
        name: 'complete and every pod on the digest: UpToDate, RolledOut when it was rolling',
        case: { observed: onNew(), previous: { state: 'Rolling' } },
        outcome: 'done',
        expect: (c) => {
          assert.deepEqual(state(c), ['UpToDate', 'runs sha256:111111111111']);
          assert.equal(c.rollout.upToDate, 1);
          assert.equal(c.rollout.events[0]?.reason, 'RolledOut');
        },
      },
      {
        name: 'a pod not ready yet: not up to date',
        case: { observed: onNew({ running: { digests: [{ digest: NEW, pods: 2, ready: 1 }], unknown: 0 } }) },
        outcome: 'next',
      },
      {
        name: 'pods on two digests: not up to date',
        case: {
          observed: onNew({
            running: {
              digests: [
                { digest: NEW, pods: 1, ready: 1 },
                { digest: OLD, pods: 1, ready: 1 },
              ],
              unknown: 0,
            },
          }),
        },
        outcome: 'next',
      },
    ]);
  });

  describe('failRollout', () => {
    const failed = { state: 'Failed' as const, message: 'ProgressDeadlineExceeded' };
    table(failRollout, [
      {
        name: 'the controller gave up: rolled back to the previous digest, the digest remembered',
        case: { observed: onNew({ progress: failed }), previous: { state: 'Rolling', previousDigest: OLD } },
        outcome: 'done',
        expect: (c) => {
          assert.equal(c.rollout.pins[0]?.image, `${REPO}@${OLD}`);
          assert.equal(c.rollout.pins[0]?.rollback, true);
          assert.equal(c.rollout.failedDigest, NEW);
          assert.equal(c.rollout.events[0]?.reason, 'RolledBack');
          assert.equal(state(c)[0], 'Failed');
        },
      },
      {
        name: 'past the progress deadline: failed',
        case: {
          observed: onNew({ progress: { state: 'Progressing', message: '1 of 2 updated' } }),
          previous: { state: 'Rolling', since: ago(601), previousDigest: OLD },
        },
        outcome: 'done',
        expect: (c) => assert.match(state(c)[1] ?? '', /not every pod runs sha256:111111111111 after 10m/),
      },
      {
        name: 'without rollbackOnFailure: failed and left where it is',
        case: {
          rollout: { rollbackOnFailure: false },
          observed: onNew({ progress: failed }),
          previous: { previousDigest: OLD },
        },
        outcome: 'done',
        expect: (c) => {
          assert.deepEqual(c.rollout.pins, []);
          assert.equal(c.rollout.events[0]?.reason, 'RolloutFailed');
        },
      },
      {
        name: 'within the deadline: not failed',
        case: { observed: onNew({ progress: { state: 'Progressing', message: '' } }), previous: { since: ago(30) } },
        outcome: 'next',
      },
    ]);
  });

  describe('keepRolling', () => {
    table(keepRolling, [
      {
        name: 'holds a slot and looks again within 10 s',
        case: { observed: onNew({ progress: { state: 'Progressing', message: '1 of 2 updated' } }) },
        outcome: 'done',
        expect: (c) => {
          assert.deepEqual(state(c), ['Rolling', '1 of 2 updated']);
          assert.deepEqual([...c.rollout.rolling], ['Deployment/web']);
          assert.equal(c.rollout.requeueAfterMs, 10_000);
        },
      },
    ]);
  });

  describe('countRevert and stopRevertLoop', () => {
    const reverted = { pinnedImage: `${REPO}@${NEW}`, imageOwner: 'argocd-controller' };
    table(countRevert, [
      {
        name: 'a pin set back by another manager is counted once, with an Event',
        case: { observed: reverted },
        outcome: 'next',
        expect: (c) => {
          assert.deepEqual([c.reverts, c.revertedBy], [1, 'argocd-controller']);
          assert.equal(c.rollout.events[0]?.reason, 'ImageReverted');
        },
      },
      {
        name: 'a stale copy (its pin carries an older count) is not counted again',
        case: {
          observed: { ...reverted, pinnedReverts: 0 },
          previous: { reverts: 1, revertedBy: 'argocd-controller' },
        },
        outcome: 'next',
        expect: (c) => assert.equal(c.reverts, 1),
      },
      {
        name: 'the image owned by Patchline is no revert',
        case: { observed: { ...reverted, imageOwner: 'patchline' } },
        outcome: 'next',
        expect: (c) => assert.equal(c.reverts, 0),
      },
    ]);
    table(stopRevertLoop, [
      {
        name: 'a second revert blocks the container, naming the manager',
        case: { previous: { reverts: 2, revertedBy: 'flux' } },
        outcome: 'done',
        expect: (c) => assert.match(state(c)[1] ?? '', /^flux keeps setting the image back/),
      },
      { name: 'one revert is pinned again', case: { previous: { reverts: 1, revertedBy: 'flux' } }, outcome: 'next' },
    ]);
  });

  describe('the rules that hold a pin back', () => {
    table(holdFailedDigest, [
      {
        name: 'the failed digest holds the other workloads back',
        case: { failedDigest: NEW },
        outcome: 'done',
        expect: (c) => assert.match(state(c)[1] ?? '', /failed elsewhere/),
      },
      {
        name: 'the workload that failed stays Failed with its message',
        case: { failedDigest: NEW, previous: { state: 'Failed', message: 'rollout failed: crash loop' } },
        outcome: 'done',
        expect: (c) => assert.deepEqual(state(c), ['Failed', 'rollout failed: crash loop']),
      },
      {
        name: 'a requested reconcile forgets the failure',
        case: { failedDigest: NEW, input: { retryRequested: true } },
        outcome: 'next',
      },
      { name: 'a newer digest is not the failed one', case: { failedDigest: OLD }, outcome: 'next' },
    ]);
    table(followGit, [
      {
        name: 'GitOps mode, nothing pushed yet: Pending, never a pin',
        case: { rollout: { mode: 'GitOps' }, input: { gitOps: { writeBack: 'fleet' } } },
        outcome: 'done',
        expect: (c) => {
          assert.deepEqual(state(c), [
            'Pending',
            'GitOps mode: writing sha256:111111111111 to git through GitWriteBack fleet',
          ]);
          assert.deepEqual(c.rollout.pins, []);
        },
      },
      {
        name: 'GitOps mode, the commit pushed: Rolling, naming the commit, until the engine applies it',
        case: {
          rollout: { mode: 'GitOps' },
          input: {
            gitOps: {
              writeBack: 'fleet',
              written: { digest: NEW, commit: 'c0ffee'.padEnd(40, '0'), committedAt: ago(60) },
            },
          },
        },
        outcome: 'done',
        expect: (c) => {
          assert.deepEqual(state(c), [
            'Rolling',
            'committed c0ffee000000; waiting for the GitOps engine to apply sha256:111111111111',
          ]);
          assert.equal(c.rollout.workloads[0]?.commit, 'c0ffee'.padEnd(40, '0'));
          assert.equal(c.rollout.workloads[0]?.previousDigest, OLD);
        },
      },
      {
        name: 'GitOps mode, not applied within the deadline from the commit: reverted in git',
        case: {
          rollout: { mode: 'GitOps' },
          previous: { previousDigest: OLD },
          input: {
            gitOps: { writeBack: 'fleet', written: { digest: NEW, commit: 'c'.repeat(40), committedAt: ago(601) } },
          },
        },
        outcome: 'done',
        expect: (c) => {
          assert.equal(c.rollout.revertTo, OLD);
          assert.equal(c.rollout.failedDigest, NEW);
          assert.deepEqual(c.rollout.pins, []);
          assert.equal(c.rollout.events[0]?.reason, 'RolledBack');
        },
      },
      { name: 'Auto mode: on', case: { rollout: { mode: 'Auto' } }, outcome: 'next' },
    ]);
    table(waitForApproval, [
      {
        name: 'Manual mode without approval: PendingApproval, saying what to annotate',
        case: { rollout: { mode: 'Manual' } },
        outcome: 'done',
        expect: (c) =>
          assert.equal(state(c)[1], `annotate the ImagePolicy with patchline.dev/approve-digest=${NEW} to roll it out`),
      },
      {
        name: 'Manual mode, another digest approved: still pending',
        case: { rollout: { mode: 'Manual' }, annotations: { 'patchline.dev/approve-digest': OLD } },
        outcome: 'done',
      },
      {
        name: 'Manual mode, this digest approved: on',
        case: { rollout: { mode: 'Manual' }, annotations: { 'patchline.dev/approve-digest': NEW } },
        outcome: 'next',
      },
    ]);
    table(waitForWindow, [
      { name: 'window closed: pending', case: { input: { windowOpen: false } }, outcome: 'done' },
      { name: 'window open: on', case: {}, outcome: 'next' },
    ]);
    table(waitForSlot, [
      {
        name: 'maxConcurrent workloads rolling: pending',
        case: { rollout: { maxConcurrent: 2 }, rolling: ['Deployment/a', 'Deployment/b'] },
        outcome: 'done',
        expect: (c) => assert.equal(state(c)[1], 'waiting: 2 workloads rolling (maxConcurrent 2)'),
      },
      {
        name: 'its own workload already rolling: on (another container of it)',
        case: { rollout: { maxConcurrent: 1 }, rolling: ['Deployment/web'] },
        outcome: 'next',
      },
      { name: 'a slot free: on', case: { rollout: { maxConcurrent: 2 }, rolling: ['Deployment/a'] }, outcome: 'next' },
    ]);
  });

  describe('pin', () => {
    table(pin, [
      {
        name: 'pins the digest, remembering what ran as the rollback target',
        case: { previous: { reverts: 1, revertedBy: 'flux' } },
        outcome: 'done',
        expect: (c) => {
          assert.deepEqual(c.rollout.pins, [
            {
              kind: 'Deployment',
              name: 'web',
              container: 'web',
              image: `${REPO}@${NEW}`,
              previousImage: `${REPO}@${OLD}`,
              rollback: false,
              reverts: 1,
            },
          ]);
          const w = c.rollout.workloads[0]!;
          assert.deepEqual([w.state, w.previousDigest, w.reverts], ['Rolling', OLD, 1]);
          assert.equal(c.rollout.events[0]?.reason, 'RolloutStarted');
          assert.equal(c.rollout.requeueAfterMs, 5_000);
        },
      },
      {
        name: 'a tag in the spec: the running digest is the rollback target',
        case: { observed: { specImage: `${REPO}:1.3` } },
        outcome: 'done',
        expect: (c) => assert.equal(c.rollout.workloads[0]?.previousDigest, OLD),
      },
    ]);
  });
});
