// The ImagePolicy decision's steps one at a time, as tables: the draft a step is given (the
// policy, what was gathered, what the steps before decided) and what it decides. The
// decision as a whole is tested in decide.test.ts.
import assert from 'node:assert/strict';
import type { ImagePolicy, ImagePolicyStatus } from '../../../src/api/v1alpha1/index.ts';
import {
  applyLifecycle,
  explainRefusal,
  judgeCandidate,
  mapScans,
  planGitOps,
  planRollout,
  scheduleNextLook,
  setConditions,
  startPolicy,
  type PolicyDraft,
  type PolicyGathered,
  type PolicyStep,
} from '../../../src/controllers/imagepolicy/decide.ts';
import type { ObservedContainer } from '../../../src/controllers/imagepolicy/rollout.ts';
import { stepTable as table } from '../../support/step-table.ts';

const REPO = 'registry.example/shop/web';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const now = new Date('2026-11-22T10:00:00Z');
const served = { matches: true, message: 'served' };

function policy(spec: Partial<ImagePolicy['spec']> = {}, status?: ImagePolicyStatus): ImagePolicy {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'web', namespace: 'shop', generation: 4 },
    spec: { image: REPO, follow: { tag: '1.4' }, workloads: {}, ...spec },
    ...(status ? { status } : {}),
  };
}

const container = (digest: string, state: 'Complete' | 'Progressing' = 'Complete'): ObservedContainer => ({
  kind: 'Deployment',
  name: 'web',
  container: 'web',
  specImage: `${REPO}@${digest}`,
  running: { digests: [{ digest, pods: 1, ready: 1 }], unknown: 0 },
  progress: { state, message: state === 'Complete' ? 'available' : 'rolling' },
});

function draft(p: ImagePolicy, gathered: Partial<PolicyGathered> = {}, before: PolicyStep[] = []): PolicyDraft {
  const d = startPolicy(p, now, { follow: {}, observed: [], violations: [], ...gathered });
  for (const step of before) step(d);
  return d;
}

const acceptedLatest = { tag: '1.4', digest: D1, shortDigest: 'sha256:111111111111', verified: true, checks: [] };
const condition = (d: PolicyDraft, type: string) => d.status.conditions?.find((c) => c.type === type);

describe('ImagePolicy decision steps', () => {
  describe('applyLifecycle', () => {
    table(applyLifecycle, [
      {
        name: 'suspended: ends the decision with the Suspended event',
        draft: () => draft(policy({ suspend: true })),
        outcome: 'done',
        expect: (d) => {
          assert.equal(condition(d, 'Ready')?.reason, 'Suspended');
          assert.deepEqual(
            d.events.map((e) => e.reason),
            ['Suspended'],
          );
        },
      },
      {
        name: 'an invalid spec: ends the decision, Stalled',
        draft: () => draft(policy({ interval: '1s' })),
        outcome: 'done',
        expect: (d) => assert.equal(condition(d, 'Stalled')?.reason, 'InvalidSpec'),
      },
      {
        name: 'a valid spec: goes on, recording no event of its own',
        draft: () => draft(policy()),
        outcome: 'next',
        expect: (d) => assert.deepEqual(d.events, []),
      },
    ]);
  });

  describe('judgeCandidate', () => {
    table(judgeCandidate, [
      {
        name: 'a new digest that passes: verified, CandidateAccepted',
        draft: () => draft(policy(), { follow: { tag: '1.4', digest: D1 }, facts: { served } }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.latest?.verified, true);
          assert.deepEqual(
            d.latest?.checks?.map((c) => c.name),
            ['digest'],
          );
          assert.equal(d.events[0]?.reason, 'CandidateAccepted');
        },
      },
      {
        name: 'a new digest that fails: not verified, CandidateRefused naming the check',
        draft: () => draft(policy(), { follow: { tag: '1.4', digest: D1 }, facts: {} }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.latest?.verified, false);
          assert.equal(d.events[0]?.details?.check, 'digest');
        },
      },
      {
        name: 'the same verdict again: no new record, no event',
        draft: () =>
          draft(
            policy(
              {},
              {
                latest: {
                  ...acceptedLatest,
                  checks: [{ name: 'digest', passed: true, message: 'served' }],
                  checkedAt: '2026-11-22T09:00:00Z',
                },
              },
            ),
            { follow: { tag: '1.4', digest: D1 }, facts: { served } },
          ),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.latest?.checkedAt, '2026-11-22T09:00:00Z');
          assert.deepEqual(d.events, []);
        },
      },
      {
        name: 'facts unreadable for a new digest: a check error, not a refusal',
        draft: () => draft(policy(), { follow: { tag: '1.4', digest: D2 }, factsError: 'registry down' }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.checkError, 'cannot check 1.4@sha256:222222222222: registry down');
          assert.equal(d.latest?.verified, false);
        },
      },
      {
        name: 'facts unreadable for the digest already accepted: it stays accepted',
        draft: () =>
          draft(policy({}, { latest: acceptedLatest }), {
            follow: { tag: '1.4', digest: D1 },
            factsError: 'registry down',
          }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.checkError, undefined);
          assert.equal(d.latest?.verified, true);
        },
      },
    ]);
  });

  describe('explainRefusal', () => {
    table(explainRefusal, [
      {
        name: 'a refused candidate: names the first failed check',
        draft: () => draft(policy(), { follow: { tag: '1.4', digest: D1 }, facts: {} }, [judgeCandidate]),
        outcome: 'next',
        expect: (d) => assert.match(d.refusal ?? '', /^1\.4@sha256:111111111111 refused: digest: /),
      },
      {
        name: 'an accepted candidate: no refusal, recorded in status',
        draft: () => draft(policy({}, { latest: acceptedLatest })),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.refusal, undefined);
          assert.equal(d.status.latest?.digest, D1);
        },
      },
    ]);
  });

  describe('planRollout', () => {
    table(planRollout, [
      {
        name: 'an accepted digest is pinned on a container running another',
        draft: () => draft(policy({}, { latest: acceptedLatest }), { observed: [container(D2)] }),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.pins[0]?.image, `${REPO}@${D1}`);
          assert.equal(d.status.upToDate, '0/1');
        },
      },
      {
        name: 'a refusal holds every container Blocked',
        draft: () =>
          draft(policy(), { follow: { tag: '1.4', digest: D1 }, facts: {}, observed: [container(D2)] }, [
            judgeCandidate,
            explainRefusal,
          ]),
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(d.pins, []);
          assert.equal(d.rollout?.workloads[0]?.state, 'Blocked');
        },
      },
    ]);
  });

  describe('mapScans', () => {
    const scans = new Map([
      [
        D1,
        {
          counts: { CRITICAL: 1, HIGH: 2, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
          blocking: 1,
          report: 'shop/replicaset-web',
          message: 'CVE-1 is CRITICAL',
        },
      ],
    ]);
    table(mapScans, [
      {
        name: 'counts per running digest, and a violation above the gate',
        draft: () => draft(policy({}, { latest: acceptedLatest }), { observed: [container(D1)], scans }, [planRollout]),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.workloads?.[0]?.vulnerabilities?.critical, 1);
          assert.deepEqual(
            d.status.violations?.map((v) => v.rule),
            ['vulnerabilities'],
          );
        },
      },
      {
        name: 'exposed secrets: counts and rule ids per running digest (never the secrets), a violation above the gate',
        draft: () =>
          draft(
            policy({}, { latest: acceptedLatest }),
            {
              observed: [container(D1)],
              secretScans: new Map([
                [
                  D1,
                  {
                    counts: { CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
                    blocking: 1,
                    rules: ['aws-access-key-id'],
                    report: 'shop/replicaset-web-app',
                    message: '1 exposed secret(s) above NONE: aws-access-key-id (CRITICAL) in /app/.env',
                  },
                ],
              ]),
            },
            [planRollout],
          ),
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(d.status.workloads?.[0]?.secrets, {
            critical: 1,
            high: 0,
            medium: 0,
            low: 0,
            blocking: 1,
            rules: ['aws-access-key-id'],
            report: 'shop/replicaset-web-app',
          });
          assert.deepEqual(
            d.status.violations?.map((v) => [v.rule, v.message]),
            [['secrets', '1 exposed secret(s) above NONE: aws-access-key-id (CRITICAL) in /app/.env']],
          );
        },
      },
      {
        name: 'nothing scanned: no counts, no violations',
        draft: () => draft(policy({}, { latest: acceptedLatest }), { observed: [container(D1)] }, [planRollout]),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.workloads?.[0]?.vulnerabilities, undefined);
          assert.equal(d.status.violations, undefined);
        },
      },
    ]);
  });

  describe('setConditions', () => {
    const through = [applyLifecycle, judgeCandidate, explainRefusal, planRollout, mapScans];
    table(setConditions, [
      {
        name: 'looking up the digest: Ready Unknown, Reconciling',
        draft: () => draft(policy(), {}, through),
        outcome: 'next',
        expect: (d) => {
          assert.equal(condition(d, 'Ready')?.status, 'Unknown');
          assert.equal(condition(d, 'Reconciling')?.reason, 'Following');
        },
      },
      {
        name: 'the registry fails before any digest: FollowFailed with a Warning',
        draft: () => draft(policy(), { follow: { error: 'refused' } }, through),
        outcome: 'next',
        expect: (d) => {
          assert.equal(condition(d, 'Ready')?.reason, 'FollowFailed');
          assert.deepEqual(
            d.events.map((e) => e.reason),
            ['FollowFailed'],
          );
        },
      },
      {
        name: 'accepted and every container up to date: Ready, Compliant, rollout Complete',
        draft: () => draft(policy({}, { latest: acceptedLatest }), { observed: [container(D1)] }, through),
        outcome: 'next',
        expect: (d) => {
          assert.equal(condition(d, 'Ready')?.reason, 'Accepted');
          assert.equal(condition(d, 'Compliant')?.message, 'every selected container runs an acceptable image');
          assert.equal(condition(d, 'RolloutProgressing')?.reason, 'Complete');
          assert.equal(condition(d, 'Reconciling'), undefined);
        },
      },
      {
        name: 'rolling: RolloutProgressing True and Reconciling',
        draft: () => draft(policy({}, { latest: acceptedLatest }), { observed: [container(D2)] }, through),
        outcome: 'next',
        expect: (d) => {
          assert.equal(condition(d, 'RolloutProgressing')?.status, 'True');
          assert.equal(condition(d, 'Reconciling')?.reason, 'Rolling');
        },
      },
      {
        name: 'a violation: Compliant False and one PolicyViolation event',
        draft: () =>
          draft(
            policy({}, { latest: acceptedLatest }),
            {
              observed: [container(D1)],
              violations: [{ workload: 'Deployment/web', container: 'web', image: 'x', rule: 'registry' }],
            },
            through,
          ),
        outcome: 'next',
        expect: (d) => {
          assert.equal(condition(d, 'Compliant')?.status, 'False');
          assert.deepEqual(
            d.events.map((e) => e.reason),
            ['PolicyViolation'],
          );
        },
      },
    ]);
  });

  describe('planGitOps', () => {
    const gitOps = { mode: 'GitOps' as const, gitOps: { writeBackRef: { name: 'fleet' } } };
    const since = '2026-11-22T09:00:00Z';
    table(planGitOps, [
      {
        name: 'not GitOps: no gitOps status',
        draft: () =>
          draft(policy({}, { latest: acceptedLatest, gitOps: { desired: { digest: D1 } } }), {}, [planRollout]),
        outcome: 'next',
        expect: (d) => assert.equal(d.status.gitOps, undefined),
      },
      {
        name: 'an accepted digest is what git should say, even with no workload selected; one Event',
        draft: () =>
          draft(policy({ rollout: gitOps }, { latest: acceptedLatest }), { gitOps: { writeBack: 'fleet' } }, [
            planRollout,
          ]),
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(d.status.gitOps, {
            desired: { digest: D1, tag: '1.4', reason: 'Rollout', since: '2026-11-22T10:00:00Z' },
          });
          assert.equal(d.events[0]?.reason, 'GitWriteRequested');
          assert.match(d.events[0]?.note ?? '', /asking GitWriteBack fleet to write 1\.4@sha256:111111111111/);
        },
      },
      {
        name: 'the same value again keeps its time and says nothing; the pushed commit is recorded',
        draft: () =>
          draft(
            policy(
              { rollout: gitOps },
              { latest: acceptedLatest, gitOps: { desired: { digest: D1, tag: '1.4', reason: 'Rollout', since } } },
            ),
            {
              gitOps: {
                writeBack: 'fleet',
                written: { digest: D1, commit: 'c'.repeat(40), committedAt: '2026-11-22T09:30:00Z' },
              },
            },
            [planRollout],
          ),
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(d.status.gitOps, {
            desired: { digest: D1, tag: '1.4', reason: 'Rollout', since },
            commit: 'c'.repeat(40),
            committedAt: '2026-11-22T09:30:00Z',
          });
          assert.deepEqual(d.events, []);
        },
      },
      {
        name: 'a newer digest remembers the value before it',
        draft: () =>
          draft(
            policy(
              { rollout: gitOps },
              {
                latest: { ...acceptedLatest, digest: D2, shortDigest: 'sha256:222222222222', tag: '1.5' },
                gitOps: { desired: { digest: D1, tag: '1.4', reason: 'Rollout', since } },
              },
            ),
            { gitOps: { writeBack: 'fleet' } },
            [planRollout],
          ),
        outcome: 'next',
        expect: (d) => {
          assert.equal(d.status.gitOps?.desired?.digest, D2);
          assert.deepEqual(d.status.gitOps?.previous, { digest: D1, tag: '1.4' });
        },
      },
      {
        name: 'a failed rollout reverts git to the value before, with its tag',
        draft: () => {
          const d = draft(
            policy(
              { rollout: gitOps },
              {
                latest: { ...acceptedLatest, digest: D2, shortDigest: 'sha256:222222222222', tag: '1.5' },
                gitOps: {
                  desired: { digest: D2, tag: '1.5', reason: 'Rollout', since },
                  previous: { digest: D1, tag: '1.4' },
                },
              },
            ),
            { gitOps: { writeBack: 'fleet' } },
            [planRollout],
          );
          d.rollout = { ...d.rollout!, revertTo: D1 };
          return d;
        },
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(d.status.gitOps?.desired, {
            digest: D1,
            tag: '1.4',
            reason: 'Revert',
            since: '2026-11-22T10:00:00Z',
          });
          assert.deepEqual(
            d.events.map((e) => [e.type, e.reason]),
            [['Warning', 'GitRevertRequested']],
          );
        },
      },
    ]);
  });

  describe('scheduleNextLook', () => {
    table(scheduleNextLook, [
      {
        name: 'the interval when nothing is rolling',
        draft: () => draft(policy({ interval: '2m' })),
        outcome: 'next',
        expect: (d) => assert.equal(d.requeueAfterMs, 120_000),
      },
      {
        name: 'at rest (accepted, every container on it): no look on a timer, changes wake the policy',
        draft: () =>
          draft(
            policy({ interval: '1m' }),
            { follow: { tag: '1.4', digest: D1 }, facts: { served }, observed: [container(D1)] },
            [judgeCandidate, explainRefusal, planRollout, mapScans],
          ),
        outcome: 'next',
        expect: (d) => {
          assert.deepEqual(
            d.status.workloads?.map((w) => w.state),
            ['UpToDate'],
          );
          assert.equal(d.requeueAfterMs, undefined);
        },
      },
      {
        name: 'at rest with verify.maxAge: looked at again just when the candidate ages out',
        draft: () =>
          draft(
            policy({ interval: '1m', verify: { maxAge: '720h' } }),
            {
              follow: { tag: '1.4', digest: D1 },
              facts: { served, created: new Date(now.getTime() - 719 * 3_600_000) },
              observed: [container(D1)],
            },
            [judgeCandidate, explainRefusal, planRollout, mapScans],
          ),
        outcome: 'next',
        expect: (d) => assert.equal(d.requeueAfterMs, 3_600_000 + 1_000),
      },
      {
        name: 'a refused candidate keeps looking at the interval (its verdict is asked again)',
        draft: () =>
          draft(policy({ interval: '1m' }), { follow: { tag: '1.4', digest: D1 }, facts: {} }, [
            judgeCandidate,
            explainRefusal,
            planRollout,
            mapScans,
          ]),
        outcome: 'next',
        expect: (d) => assert.equal(d.requeueAfterMs, 60_000),
      },
      {
        name: 'a registry that does not answer keeps looking at the interval',
        draft: () =>
          draft(
            policy({ interval: '1m' }, { latest: acceptedLatest }),
            {
              follow: { tag: '1.4', digest: D1, error: 'connection refused' },
              facts: { served },
              observed: [container(D1)],
            },
            [judgeCandidate, explainRefusal, planRollout, mapScans],
          ),
        outcome: 'next',
        expect: (d) => assert.equal(d.requeueAfterMs, 60_000),
      },
      {
        name: 'sooner while a rollout is followed',
        draft: () => draft(policy({}, { latest: acceptedLatest }), { observed: [container(D2)] }, [planRollout]),
        outcome: 'next',
        expect: (d) => assert.equal(d.requeueAfterMs, 5_000),
      },
    ]);
  });
});
