// The rebuild cycle's steps one at a time, as tables: for each step, the draft it is given
// (a trigger's status and what was observed) and what it decides. The whole cycle is tested
// end to end in rebuild-cycle.test.ts.
import assert from 'node:assert/strict';
import type { RebuildTrigger, RebuildTriggerStatus } from '../../../src/api/v1alpha1/index.ts';
import {
  awaitRebuiltImage,
  finishCycle,
  followBuildInFlight,
  recordBaseDigests,
  renewPendingChange,
  reportSteadyState,
  retryFailedBuild,
  retryOnRequest,
  startCycle,
  startPendingChange,
  timeOutBuild,
  type CycleDraft,
} from '../../../src/controllers/rebuildtrigger/cycle-steps.ts';
import { revisionOf, type CycleInput } from '../../../src/controllers/rebuildtrigger/cycle-model.ts';
import { stepTable as table } from '../../support/step-table.ts';

const BASE = 'registry.example/base/python:3.12';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const T0 = `sha256:${'a'.repeat(64)}`;
const T1 = `sha256:${'b'.repeat(64)}`;
const now = new Date('2026-11-22T10:00:00Z');
const ago = (s: number): string => new Date(now.getTime() - s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function trigger(status: RebuildTriggerStatus = {}, spec: Partial<RebuildTrigger['spec']> = {}): RebuildTrigger {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'RebuildTrigger',
    metadata: { name: 'app', namespace: 'shop', uid: 'uid-1', generation: 1 },
    spec: {
      baseImages: [{ image: BASE }],
      target: { image: 'registry.example/team/app:1.0' },
      build: { webhook: { url: 'https://builds.example/builds' }, credentialsRef: { name: 'creds' } },
      settle: '5m',
      ...spec,
    },
    status,
  };
}

const REV1 = revisionOf(trigger(), [{ image: BASE, digest: D1 }]);
const REV2 = revisionOf(trigger(), [{ image: BASE, digest: D2 }]);

function draft(status: RebuildTriggerStatus = {}, over: Partial<CycleInput> = {}): CycleDraft {
  const input: CycleInput = {
    trigger: trigger(status, over.trigger?.spec),
    provider: 'webhook',
    now,
    bases: [{ image: BASE, digest: D1, checkedAt: now }],
    target: { digest: T0 },
    slot: { available: true, limit: 20 },
    manualRetry: false,
    ...over,
  };
  if (over.trigger) input.trigger = { ...over.trigger, status };
  return startCycle(input);
}

const building = (phase: string, startedS: number, extra: object = {}): RebuildTriggerStatus => ({
  bases: [{ image: BASE, digest: D1 }],
  build: { phase: phase as never, revision: REV1, correlationId: 'pl1', id: 'b-1', startedAt: ago(startedS), ...extra },
});

describe('rebuild cycle steps', () => {
  describe('recordBaseDigests', () => {
    table(recordBaseDigests, [
      {
        name: 'learns a first digest as the baseline: no change',
        draft: () => draft(),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.bases?.[0]?.digest, D1);
          assert.deepEqual(d.changed, []);
          assert.equal(d.revision, REV1);
        },
      },
      {
        name: 'a new digest is a change, remembering the previous one',
        draft: () => draft({ bases: [{ image: BASE, digest: D1 }] }, { bases: [{ image: BASE, digest: D2 }] }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.changed.length, 1);
          assert.equal(d.status.bases?.[0]?.previousDigest, D1);
          assert.equal(d.revision, REV2);
        },
      },
      {
        name: 'an unreadable base keeps its recorded digest and notes the error',
        draft: () => draft({ bases: [{ image: BASE, digest: D1 }] }, { bases: [{ image: BASE, error: 'timeout' }] }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.bases?.[0]?.digest, D1);
          assert.equal(d.status.bases?.[0]?.error, 'timeout');
          assert.deepEqual(d.baseErrors, [`${BASE}: timeout`]);
        },
      },
      {
        name: 'no digest known yet: no revision',
        draft: () => draft({}, { bases: [] }),
        outcome: 'next',
        expect: (d) => assert.equal(d.revision, undefined),
      },
    ]);
  });

  describe('renewPendingChange', () => {
    const changed = (status: RebuildTriggerStatus): CycleDraft => {
      const d = draft({ bases: [{ image: BASE, digest: D1 }], ...status }, { bases: [{ image: BASE, digest: D2 }] });
      recordBaseDigests(d);
      return d;
    };
    table(renewPendingChange, [
      {
        name: 'a change becomes the pending change, settling for spec.settle, with an Event',
        draft: () => changed({}),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.pending?.revision, REV2);
          assert.equal(d.status.pending?.settleUntil, '2026-11-22T10:05:00Z');
          assert.deepEqual(
            d.events.map((e) => e.reason),
            ['BaseChanged'],
          );
        },
      },
      {
        name: 'a change back to the revision being built drops the pending change',
        draft: () => changed({ pending: { revision: REV1 }, build: { phase: 'Running', revision: REV2 } }),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.pending, undefined),
      },
      {
        name: 'a change to the revision whose build failed is pending again',
        draft: () => changed({ build: { phase: 'Failed', revision: REV2 } }),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.pending?.revision, REV2),
      },
      {
        name: 'no change: nothing',
        draft: () => draft({ bases: [{ image: BASE, digest: D1 }] }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.pending, undefined);
          assert.deepEqual(d.events, []);
        },
      },
    ]);
  });

  describe('timeOutBuild', () => {
    table(timeOutBuild, [
      {
        name: 'a running build past build.timeout has failed',
        draft: () => draft(building('Running', 3601)),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.build?.phase, 'Failed');
          assert.equal(d.status.build?.message, 'timed out after 1h');
          assert.equal(d.events[0]?.reason, 'BuildTimedOut');
        },
      },
      {
        name: 'a running build within its timeout goes on',
        draft: () => draft(building('Running', 600)),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.build?.phase, 'Running'),
      },
      {
        name: 'a Starting build is resolved, never timed out',
        draft: () => draft(building('Starting', 7200)),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.build?.phase, 'Starting'),
      },
    ]);
  });

  describe('followBuildInFlight', () => {
    table(followBuildInFlight, [
      {
        name: 'a Starting build is resolved first',
        draft: () => draft(building('Starting', 1)),
        outcome: 'done',
        expect: (d) => {
          assert.deepEqual(d.action, { kind: 'resolve' });
          assert.equal(d.phase, 'Building');
          assert.equal(d.summary.building, true);
        },
      },
      {
        name: 'a queued or running build is polled',
        draft: () => draft(building('Queued', 1)),
        outcome: 'done',
        expect: (d) => {
          assert.deepEqual(d.action, { kind: 'poll' });
          assert.equal(d.summary.message, 'webhook build b-1 is Queued');
        },
      },
      {
        name: 'a finished build is not followed',
        draft: () => draft(building('Succeeded', 1)),
        outcome: 'next',
        expect: (d) => assert.deepEqual(d.action, { kind: 'none' }),
      },
    ]);
  });

  describe('awaitRebuiltImage', () => {
    const succeeded = (finishedS: number) =>
      building('Succeeded', finishedS + 60, { finishedAt: ago(finishedS), targetDigestBefore: T0, baseImage: BASE });
    table(awaitRebuiltImage, [
      {
        name: 'waits (Verifying, looking again in 30 s) while the target still shows the old image',
        draft: () => draft(succeeded(10)),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.phase, 'Verifying');
          assert.equal(d.requeueAfterMs, 30_000);
        },
      },
      {
        name: 'lands the new target digest once its provenance is judged',
        draft: () =>
          draft(succeeded(10), {
            target: { digest: T1 },
            provenance: { digest: T1, result: { verdict: 'Verified', message: 'built on it' } },
          }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.landed?.digest, T1);
          assert.equal(d.status.landed?.provenance, 'Verified');
          assert.equal(d.events[0]?.reason, 'Landed');
        },
      },
      {
        name: 'a mismatched provenance lands with a Warning',
        draft: () =>
          draft(succeeded(10), {
            target: { digest: T1 },
            provenance: { digest: T1, result: { verdict: 'Mismatch', message: 'another base' } },
          }),
        outcome: 'next',
        expect: (d) => assert.deepEqual([d.events[0]?.type, d.events[0]?.reason], ['Warning', 'ProvenanceMismatch']),
      },
      {
        name: 'an image that never shows up fails the build, with a retry time',
        draft: () => draft(succeeded(16 * 60)),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.build?.phase, 'Failed');
          assert.ok(d.status.build?.retryAt);
          assert.equal(d.events[0]?.reason, 'BuildFailed');
        },
      },
    ]);
  });

  describe('retryOnRequest', () => {
    const failed: RebuildTriggerStatus = {
      build: { phase: 'Failed', revision: REV1, baseImage: BASE, baseDigest: D1 },
    };
    table(retryOnRequest, [
      {
        name: 'a requested reconcile makes the failed revision pending, already settled',
        draft: () => draft(failed, { manualRetry: true }),
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(d.status.pending, {
            revision: REV1,
            baseImage: BASE,
            baseDigest: D1,
            since: '2026-11-22T10:00:00Z',
            settleUntil: '2026-11-22T10:00:00Z',
          });
          assert.equal(d.events[0]?.reason, 'BuildRetried');
        },
      },
      {
        name: 'without a request nothing changes',
        draft: () => draft(failed),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.pending, undefined),
      },
      {
        name: 'a request when nothing failed changes nothing',
        draft: () => draft(building('Succeeded', 1), { manualRetry: true }),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.pending, undefined),
      },
    ]);
  });

  describe('startPendingChange', () => {
    const pending = (settleS: number): RebuildTriggerStatus => ({
      bases: [{ image: BASE, digest: D2 }],
      pending: { revision: REV2, baseImage: BASE, baseDigest: D2, settleUntil: ago(-settleS) },
    });
    table(startPendingChange, [
      {
        name: 'settling: waits until settleUntil',
        draft: () => draft(pending(120)),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.phase, 'Settling');
          assert.equal(d.requeueAfterMs, 120_000);
        },
      },
      {
        name: 'settled, window closed: waits for it, once announced',
        draft: () => draft(pending(0), { trigger: trigger({}, { window: { schedule: '0 2 * * *', duration: '1h' } }) }),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.phase, 'Waiting');
          assert.equal(d.summary.reason, 'WaitingForWindow');
          assert.equal(d.events[0]?.reason, 'WaitingForWindow');
        },
      },
      {
        name: 'settled, no build slot: queued with its place',
        draft: () => draft(pending(0), { slot: { available: false, position: 3, waiting: 7, limit: 2 } }),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.phase, 'Queued');
          assert.match(d.summary.message, /3 of 7 in the queue then; 2 builds at a time/);
          assert.equal(d.status.pending?.readyAt, '2026-11-22T10:00:00Z');
        },
      },
      {
        name: 'settled, slot free: writes the Starting record and asks for the start',
        draft: () => draft(pending(0)),
        outcome: 'done',
        expect: (d) => {
          assert.deepEqual(d.action, { kind: 'start' });
          assert.equal(d.status.build?.phase, 'Starting');
          assert.equal(d.status.build?.attempt, 1);
          assert.equal(d.status.build?.targetDigestBefore, T0);
          assert.equal(d.status.pending, undefined);
        },
      },
      {
        name: 'the revision already built is not pending work',
        draft: () => draft({ ...pending(0), build: { phase: 'Succeeded', revision: REV2 } }),
        outcome: 'next',
        expect: (d) => assert.deepEqual(d.action, { kind: 'none' }),
      },
      {
        name: 'the revision whose build failed starts again as the next attempt',
        draft: () => draft({ ...pending(0), build: { phase: 'Failed', revision: REV2, attempt: 2 } }),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.status.build?.attempt, 3);
          assert.equal(d.status.history?.[0]?.phase, 'Failed');
        },
      },
    ]);
  });

  describe('retryFailedBuild', () => {
    const failed = (attempt: number, retryAt?: string): RebuildTriggerStatus => ({
      build: {
        phase: 'Failed',
        revision: REV1,
        baseImage: BASE,
        baseDigest: D1,
        attempt,
        finishedAt: ago(30),
        message: 'exit 1',
        ...(retryAt ? { retryAt } : {}),
      },
    });
    table(retryFailedBuild, [
      {
        name: 'schedules the retry after a backoff from when it finished',
        draft: () => draft(failed(1)),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.summary.reason, 'Retrying');
          assert.equal(d.status.build?.retryAt, '2026-11-22T10:00:30Z');
          assert.equal(d.requeueAfterMs, 30_000);
        },
      },
      {
        name: 'retries when the time has come and a slot is free',
        draft: () => draft(failed(1, ago(1))),
        outcome: 'done',
        expect: (d) => {
          assert.deepEqual(d.action, { kind: 'start' });
          assert.equal(d.status.build?.attempt, 2);
        },
      },
      {
        name: 'stalls once the retries are spent, saying how to try again',
        draft: () => draft(failed(3)),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.summary.stalled, true);
          assert.equal(d.summary.ready, false);
          assert.match(d.summary.message, /failed after 3 attempt\(s\): exit 1\. Annotate the trigger/);
        },
      },
      {
        name: 'a build that did not fail is not retried',
        draft: () => draft(building('Succeeded', 1)),
        outcome: 'next',
        expect: (d) => assert.equal(d.summary.reason, 'Idle'),
      },
    ]);
  });

  describe('reportSteadyState', () => {
    table(reportSteadyState, [
      {
        name: 'landed: Ready and up to date, naming the digest',
        draft: () =>
          draft({
            build: { phase: 'Succeeded', revision: REV1, id: 'b-1' },
            landed: { digest: T1, revision: REV1, buildId: 'b-1', provenance: 'Verified' },
          }),
        outcome: 'done',
        expect: (d) => {
          assert.equal(d.phase, 'Landed');
          assert.equal(d.summary.ready, true);
          assert.match(
            d.summary.message,
            /is sha256:bbbbbbbbbbbb, rebuilt on the current bases \(provenance verified\)/,
          );
        },
      },
      {
        name: 'landed with a provenance mismatch: not Ready',
        draft: () =>
          draft({
            build: { phase: 'Succeeded', revision: REV1, id: 'b-1' },
            landed: { digest: T1, revision: REV1, buildId: 'b-1', provenance: 'Mismatch' },
          }),
        outcome: 'done',
        expect: (d) => assert.deepEqual([d.summary.ready, d.summary.reason], [false, 'ProvenanceMismatch']),
      },
      {
        name: 'idle while the digests are still being learnt',
        draft: () => draft(),
        outcome: 'done',
        expect: (d) => assert.equal(d.summary.message, `learning the digests of ${BASE}`),
      },
    ]);
  });

  describe('finishCycle', () => {
    it('an unreadable base makes the cycle not Ready, unless it is already stalled', () => {
      const d = draft({}, { bases: [{ image: BASE, error: 'unauthorized' }] });
      recordBaseDigests(d);
      const decision = finishCycle(d);
      assert.deepEqual([decision.summary.ready, decision.summary.reason], [false, 'RegistryError']);
      assert.equal(decision.status.phase, 'Idle');
    });

    it('polls a build in flight at its interval', () => {
      const polled = {
        build: {
          webhook: { url: 'https://builds.example/builds', statusURL: 'https://builds.example/builds/$(build.id)' },
          credentialsRef: { name: 'creds' },
        },
      };
      const d = draft(building('Running', 120), { trigger: trigger({}, polled) });
      followBuildInFlight(d);
      assert.equal(finishCycle(d).requeueAfterMs, 15_000);
    });

    it('looks at a build that reports its end (a callback) only as a fallback', () => {
      const d = draft(building('Running', 120));
      followBuildInFlight(d);
      assert.equal(finishCycle(d).requeueAfterMs, 60_000);
    });
  });
});
