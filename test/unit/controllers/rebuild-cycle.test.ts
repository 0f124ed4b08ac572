// The rebuild cycle as pure functions: every step of a base change to a landed image, with
// the clock and the observations given, and the one action each step asks for.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { RebuildTrigger, RebuildTriggerStatus } from '../../../src/api/v1alpha1/index.ts';
import { applyOutcome } from '../../../src/controllers/rebuildtrigger/build-outcome.ts';
import { decideCycle } from '../../../src/controllers/rebuildtrigger/cycle.ts';
import {
  landedCandidate,
  pollInterval,
  revisionOf,
  VERIFY_TIMEOUT_MS,
  type CycleInput,
} from '../../../src/controllers/rebuildtrigger/cycle-model.ts';
import { decideRebuildTrigger, type Gathered } from '../../../src/controllers/rebuildtrigger/decide.ts';
import { BuildSlots } from '../../../src/controllers/rebuildtrigger/slots.ts';
import { windowState } from '../../../src/controllers/window.ts';
import { judge, materialsOf } from '../../../src/verify/provenance.ts';
import { CrdValidator, loadCrd } from '../../support/crd-validator.ts';
import { ROOT } from '../../support/fixtures.ts';

const validator = new CrdValidator(loadCrd(join(ROOT, 'crds', 'rebuildtriggers.patchline.dev.yaml')));
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const T0 = `sha256:${'a'.repeat(64)}`;
const T1 = `sha256:${'b'.repeat(64)}`;
const BASE = 'registry.example/base/python:3.12';
const TARGET = 'registry.example/team/app:1.0';
const t0 = new Date('2026-11-22T10:00:00Z');
const at = (s: number): Date => new Date(t0.getTime() + s * 1000);
const FREE = { available: true, limit: 20 };

function trigger(spec: Partial<RebuildTrigger['spec']> = {}, status?: RebuildTriggerStatus): RebuildTrigger {
  const t = validator.withDefaults({
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'RebuildTrigger',
    metadata: { name: 'app', namespace: 'shop', uid: 'uid-1', generation: 1 },
    spec: {
      baseImages: [{ image: BASE }],
      target: { image: TARGET },
      build: { webhook: { url: 'https://builds.example/builds' }, credentialsRef: { name: 'creds' } },
      settle: '5m',
      ...spec,
    },
  }) as unknown as RebuildTrigger;
  if (status) t.status = status;
  return t;
}

function input(t: RebuildTrigger, now: Date, over: Partial<CycleInput> = {}): CycleInput {
  return {
    trigger: t,
    provider: 'webhook',
    now,
    bases: [{ image: BASE, digest: D1, checkedAt: now }],
    target: { digest: T0 },
    slot: FREE,
    manualRetry: false,
    ...over,
  };
}

/** Runs the cycle forward: each step's status becomes the next step's trigger status. */
class Cycle {
  t: RebuildTrigger;
  constructor(spec: Partial<RebuildTrigger['spec']> = {}) {
    this.t = trigger(spec);
  }
  step(now: Date, over: Partial<CycleInput> = {}) {
    const d = decideCycle(input(this.t, now, over));
    this.t = { ...this.t, status: d.status };
    assert.deepEqual(validator.validate(this.t), [], 'every status the cycle writes is valid for the CRD');
    return d;
  }
  outcome(now: Date, outcome: Parameters<typeof applyOutcome>[2]) {
    const applied = applyOutcome(
      this.t.status!,
      this.t.status!.build!.correlationId!,
      outcome,
      now,
      this.t.spec.build.retries ?? 2,
    );
    assert.ok(applied, 'the outcome applies to the build in status');
    this.t = { ...this.t, status: applied.status };
    return applied;
  }
}

describe('Rebuild cycle', () => {
  it('learns the base digest first without building, then settles a change before building', () => {
    const c = new Cycle();
    const first = c.step(at(0));
    assert.equal(first.action.kind, 'none');
    assert.equal(first.status.phase, 'Idle');
    assert.equal(first.status.bases?.[0]?.digest, D1);
    assert.equal(first.events.length, 0, 'the first digest seen is a baseline, not a change');

    const changed = c.step(at(10), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(changed.status.phase, 'Settling');
    assert.equal(changed.action.kind, 'none');
    assert.equal(changed.status.bases?.[0]?.previousDigest, D1);
    assert.equal(changed.status.pending?.settleUntil, '2026-11-22T10:05:10Z');
    assert.equal(changed.requeueAfterMs, 300_000);
    assert.deepEqual(
      changed.events.map((e) => e.reason),
      ['BaseChanged'],
    );

    // Another push inside the settle period restarts it.
    const again = c.step(at(100), { bases: [{ image: BASE, digest: D3 }] });
    assert.equal(again.status.pending?.baseDigest, D3);
    assert.equal(again.status.pending?.settleUntil, '2026-11-22T10:06:40Z');
    assert.equal(c.step(at(320), { bases: [{ image: BASE, digest: D3 }] }).status.phase, 'Settling');

    const start = c.step(at(400), { bases: [{ image: BASE, digest: D3 }] });
    assert.equal(start.action.kind, 'start');
    assert.equal(start.status.phase, 'Building');
    assert.equal(start.status.pending, undefined);
    const b = start.status.build!;
    assert.equal(b.phase, 'Starting');
    assert.equal(b.baseDigest, D3);
    assert.equal(b.attempt, 1);
    assert.equal(b.targetDigestBefore, T0);
    assert.match(b.correlationId!, /^pl[0-9a-f]{16}$/);
  });

  it('with platforms set, rebuilds only when a followed platform changes', () => {
    const c = new Cycle({ baseImages: [{ image: BASE, platforms: ['linux/amd64'] }], settle: '0s' });
    c.step(at(0), { bases: [{ image: BASE, digest: D1, platformDigests: { 'linux/amd64': T0 } }] });
    // The index changed (an arm64 image was added), amd64 did not.
    const same = c.step(at(10), { bases: [{ image: BASE, digest: D2, platformDigests: { 'linux/amd64': T0 } }] });
    assert.equal(same.status.phase, 'Idle');
    assert.equal(same.events.length, 0);
    assert.equal(same.status.bases?.[0]?.digest, D2, 'the index digest is still recorded');
    const changed = c.step(at(20), { bases: [{ image: BASE, digest: D3, platformDigests: { 'linux/amd64': T1 } }] });
    assert.equal(changed.action.kind, 'start');
  });

  it('waits for the maintenance window, and wakes up when it opens', () => {
    const c = new Cycle({ settle: '0s', window: { schedule: '0 2 * * *', duration: '1h', timeZone: 'UTC' } });
    c.step(at(0));
    const waiting = c.step(at(10), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(waiting.status.phase, 'Waiting');
    assert.equal(waiting.action.kind, 'none');
    assert.deepEqual(
      waiting.events.map((e) => e.reason),
      ['BaseChanged', 'WaitingForWindow'],
    );
    const opens = new Date('2026-11-23T02:00:00Z');
    assert.equal(waiting.requeueAfterMs, opens.getTime() - at(10).getTime());
    assert.equal(c.step(at(20), { bases: [{ image: BASE, digest: D2 }] }).events.length, 0, 'no repeated event');
    assert.equal(
      c.step(new Date('2026-11-23T02:30:00Z'), { bases: [{ image: BASE, digest: D2 }] }).action.kind,
      'start',
    );
  });

  it('queues for a build slot, showing its place, and starts when one is free', () => {
    const c = new Cycle({ settle: '0s' });
    c.step(at(0));
    const queued = c.step(at(10), {
      bases: [{ image: BASE, digest: D2 }],
      slot: { available: false, position: 3, waiting: 7, limit: 20 },
    });
    assert.equal(queued.status.phase, 'Queued');
    assert.equal(queued.action.kind, 'none');
    assert.match(
      queued.summary.message,
      /since 2026-11-22T10:00:10Z \(3 of 7 in the queue then; 20 builds at a time\)/,
    );
    assert.equal(queued.status.pending?.readyAt, '2026-11-22T10:00:10Z');
    // Moving up the queue does not rewrite the status (the live queue is in the metrics).
    const d = decideRebuildTrigger(
      {
        ...c.t,
        status: {
          ...queued.status,
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Queued',
              message: queued.summary.message,
              lastTransitionTime: '2026-11-22T10:00:10Z',
            },
          ],
        },
      },
      at(15),
      {
        bases: [{ image: BASE, digest: D2 }],
        target: { digest: T0 },
        slot: { available: false, position: 1, waiting: 7, limit: 20 },
      },
    );
    assert.equal(d.status.conditions?.find((x) => x.type === 'Ready')?.message, queued.summary.message);
    assert.equal(d.requeueAfterMs, 600_000);
    assert.equal(c.step(at(20), { bases: [{ image: BASE, digest: D2 }] }).action.kind, 'start');
  });

  it('looks at a build that reports its end (watched Job or PipelineRun, callback) only as a 60 s fallback', () => {
    for (const build of [
      { webhook: { url: 'https://builds.example/builds' }, credentialsRef: { name: 'creds' } },
      { job: { template: { template: { spec: { containers: [] } } } } },
      { tekton: { pipelineRef: { name: 'build' } } },
    ]) {
      const c = new Cycle({ settle: '0s', build });
      c.step(at(0));
      c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
      c.outcome(at(2), { handle: { id: 'run-1' } });
      const poll = c.step(at(3), { bases: [{ image: BASE, digest: D2 }] });
      assert.equal(poll.action.kind, 'poll', Object.keys(build)[0]);
      assert.equal(poll.requeueAfterMs, 60_000, Object.keys(build)[0]);
    }
  });

  it('follows a build: started, polled with backoff, succeeded, landed with verified provenance', () => {
    const c = new Cycle({
      settle: '0s',
      build: {
        webhook: { url: 'https://builds.example/builds', statusURL: 'https://builds.example/builds/$(build.id)' },
        credentialsRef: { name: 'creds' },
      },
    });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    const started = c.outcome(at(2), { handle: { id: 'run-1', url: 'https://builds.example/run-1' } });
    assert.deepEqual(
      started.events.map((e) => e.reason),
      ['BuildStarted'],
    );
    assert.equal(c.t.status?.build?.phase, 'Queued');
    assert.equal(c.t.status?.build?.startedAt, '2026-11-22T10:00:02Z');

    const poll = c.step(at(3), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(poll.action.kind, 'poll');
    assert.equal(poll.requeueAfterMs, 5_000);
    assert.equal(poll.summary.building, true);
    assert.equal(
      c.step(at(600), { bases: [{ image: BASE, digest: D2 }] }).requeueAfterMs,
      30_000,
      'long builds are polled less often',
    );

    c.outcome(at(601), { status: { phase: 'Running' } });
    const done = c.outcome(at(602), { status: { phase: 'Succeeded', outputDigest: T1 } });
    assert.deepEqual(
      done.events.map((e) => e.reason),
      ['BuildSucceeded'],
    );

    // The tag does not show the output digest yet: verifying.
    const verifying = c.step(at(603), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(verifying.status.phase, 'Verifying');
    assert.equal(landedCandidate(verifying.status, T0), undefined);
    assert.equal(landedCandidate(verifying.status, T1), T1);

    const landed = c.step(at(604), {
      bases: [{ image: BASE, digest: D2 }],
      target: { digest: T1 },
      provenance: {
        digest: T1,
        result: judge([{ digest: D2, source: 'annotation' }], { repositories: ['base/python'], digests: [D2] }),
      },
    });
    assert.equal(landed.status.phase, 'Landed');
    assert.deepEqual(landed.status.landed, {
      digest: T1,
      provenance: 'Verified',
      at: '2026-11-22T10:10:04Z',
      revision: c.t.status?.build?.revision,
      buildId: 'run-1',
      baseDigest: D2,
    });
    assert.deepEqual(
      landed.events.map((e) => e.reason),
      ['Landed'],
    );
    assert.equal(landed.summary.upToDate, true);
    // Steady afterwards: nothing to do, no events.
    const steady = c.step(at(700), { bases: [{ image: BASE, digest: D2 }], target: { digest: T1 } });
    assert.equal(steady.status.phase, 'Landed');
    assert.equal(steady.action.kind, 'none');
    assert.equal(steady.events.length, 0);
  });

  it('reports a provenance mismatch and an unknown provenance', () => {
    for (const [declared, verdict, reason, ready] of [
      [[{ digest: D1, source: 'annotation' as const }], 'Mismatch', 'ProvenanceMismatch', false],
      [[], 'Unknown', 'Landed', true],
    ] as const) {
      const c = new Cycle({ settle: '0s' });
      c.step(at(0));
      c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
      c.outcome(at(2), { handle: { id: 'run-1' } });
      c.outcome(at(3), { status: { phase: 'Succeeded' } });
      const d = c.step(at(4), {
        bases: [{ image: BASE, digest: D2 }],
        target: { digest: T1 },
        provenance: { digest: T1, result: judge([...declared], { repositories: ['base/python'], digests: [D2] }) },
      });
      assert.equal(d.status.landed?.provenance, verdict);
      assert.equal(d.summary.reason, reason);
      assert.equal(d.summary.ready, ready);
    }
  });

  it('fails a succeeded build whose image never shows up', () => {
    const c = new Cycle({ settle: '0s' });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    c.outcome(at(2), { handle: { id: 'run-1' } });
    c.outcome(at(3), { status: { phase: 'Succeeded' } });
    const d = c.step(new Date(at(4).getTime() + VERIFY_TIMEOUT_MS), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(d.status.build?.phase, 'Failed');
    assert.match(d.status.build?.message ?? '', /did not change within 15m/);
    assert.equal(d.summary.reason, 'Retrying', 'retried after a backoff counted from now');
  });

  it('retries a failed build with backoff, then stalls with the message and link, and retries on request', () => {
    const c = new Cycle({ settle: '0s', build: { webhook: { url: 'https://b.example' }, retries: 1 } });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    const correlation1 = c.t.status!.build!.correlationId;
    c.outcome(at(2), { handle: { id: 'run-1', url: 'https://b.example/run-1' } });
    const failed = c.outcome(at(3), { status: { phase: 'Failed', message: 'step 3 exited 1' } });
    assert.equal(failed.events[0]?.reason, 'BuildFailed');
    assert.equal(c.t.status?.build?.retryAt, '2026-11-22T10:01:03Z');

    const waiting = c.step(at(30), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(waiting.status.phase, 'Failed');
    assert.equal(waiting.summary.reason, 'Retrying');
    assert.equal(waiting.requeueAfterMs, 33_000);

    const retry = c.step(at(64), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(retry.action.kind, 'start');
    assert.equal(retry.status.build?.attempt, 2);
    assert.notEqual(retry.status.build?.correlationId, correlation1, 'each attempt has its own correlation id');
    assert.equal(retry.status.history?.[0]?.phase, 'Failed', 'the failed attempt is in the history');

    c.outcome(at(65), { handle: { id: 'run-2', url: 'https://b.example/run-2' } });
    c.outcome(at(66), { status: { phase: 'Failed', message: 'step 3 exited 1' } });
    const stalled = decideRebuildTrigger(c.t, at(200), {
      bases: [{ image: BASE, digest: D2 }],
      target: { digest: T0 },
      slot: FREE,
    });
    assert.equal(stalled.status.phase, 'Failed');
    const cond = (type: string) => stalled.status.conditions?.find((x) => x.type === type);
    assert.equal(cond('Stalled')?.status, 'True');
    assert.equal(cond('Ready')?.status, 'False');
    assert.match(
      cond('Ready')?.message ?? '',
      /failed after 2 attempt\(s\): step 3 exited 1 \(https:\/\/b\.example\/run-2\)/,
    );
    assert.deepEqual(
      stalled.events.map((e) => e.reason),
      ['Stalled'],
    );
    assert.equal(stalled.action.kind, 'none');

    // The reconcile-on-demand annotation retries it, once.
    c.t = {
      ...c.t,
      status: stalled.status,
      metadata: { ...c.t.metadata, annotations: { 'patchline.dev/reconcile-requested-at': 'now-1' } },
    };
    const asked = decideRebuildTrigger(c.t, at(300), {
      bases: [{ image: BASE, digest: D2 }],
      target: { digest: T0 },
      slot: FREE,
    });
    assert.equal(asked.action.kind, 'start');
    assert.equal(asked.status.build?.attempt, 3);
    assert.equal(asked.status.lastHandledReconcileAt, 'now-1');
    assert.ok(asked.events.some((e) => e.reason === 'BuildRetried'));
  });

  it('a refused start fails the attempt; an unreachable or throttling service leaves it to resolve', () => {
    const c = new Cycle({ settle: '0s' });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    const before = structuredClone(c.t.status);
    const unknown = applyOutcome(
      before!,
      before!.build!.correlationId!,
      { error: { kind: 'unavailable', message: 'connect ECONNREFUSED' } },
      at(2),
      2,
    );
    assert.equal(
      unknown?.status.build?.phase,
      'Starting',
      'the start may have happened: resolve it, do not start again',
    );
    const resolve = decideCycle(
      input({ ...c.t, status: unknown.status }, at(3), { bases: [{ image: BASE, digest: D2 }] }),
    );
    assert.equal(resolve.action.kind, 'resolve');
    c.outcome(at(2), { error: { kind: 'rejected', message: '401 bad signature' } });
    assert.equal(c.t.status?.build?.phase, 'Failed');
    assert.match(c.t.status?.build?.message ?? '', /bad signature/);
  });

  it('says on Ready that a build in flight cannot be followed (garbage, a hang), without failing it; clears it at the next answer', () => {
    const c = new Cycle({ settle: '0s' });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    c.outcome(at(2), { handle: { id: 'run-1' } });
    c.outcome(at(3), {
      error: { kind: 'unavailable', message: 'the build service sent a status without a known "status" field: <html>' },
    });
    assert.equal(c.t.status?.build?.phase, 'Queued', 'not failed for it');
    let d = c.step(at(4), { bases: [{ image: BASE, digest: D2 }] });
    const ready = () => d.summary.message;
    assert.match(
      ready(),
      /is Queued; cannot follow it now: the build service sent a status without a known "status" field/,
    );
    c.outcome(at(5), { status: { phase: 'Running' } });
    assert.equal(c.t.status?.build?.followError, undefined);
    d = c.step(at(6), { bases: [{ image: BASE, digest: D2 }] });
    assert.doesNotMatch(ready(), /cannot follow/);
  });

  it('ignores an outcome for a build the status no longer holds', () => {
    const c = new Cycle({ settle: '0s' });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(applyOutcome(c.t.status!, 'pl-someone-else', { handle: { id: 'x' } }, at(2), 2), undefined);
    c.outcome(at(2), { handle: { id: 'run-1' } });
    c.outcome(at(3), { status: { phase: 'Succeeded' } });
    assert.equal(
      applyOutcome(c.t.status!, c.t.status!.build!.correlationId!, { status: { phase: 'Failed' } }, at(4), 2),
      undefined,
      'a finished build is not reopened',
    );
  });

  it('times a build out', () => {
    const c = new Cycle({ settle: '0s', build: { webhook: { url: 'https://b.example' }, timeout: '10m' } });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    c.outcome(at(2), { handle: { id: 'run-1' } });
    const d = c.step(at(700), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(d.status.build?.phase, 'Failed');
    assert.ok(d.events.some((e) => e.reason === 'BuildTimedOut'));
  });

  it('a change back to what is being built drops the pending change; a new change during a build waits for it', () => {
    const c = new Cycle({ settle: '0s' });
    c.step(at(0));
    c.step(at(1), { bases: [{ image: BASE, digest: D2 }] });
    c.outcome(at(2), { handle: { id: 'run-1' } });
    const during = c.step(at(3), { bases: [{ image: BASE, digest: D3 }] });
    assert.equal(during.action.kind, 'poll', 'the build in flight is followed first');
    assert.equal(during.status.pending?.baseDigest, D3);
    const back = c.step(at(4), { bases: [{ image: BASE, digest: D2 }] });
    assert.equal(back.status.pending, undefined);
    c.step(at(5), { bases: [{ image: BASE, digest: D3 }] });
    c.outcome(at(6), { status: { phase: 'Succeeded' } });
    const next = c.step(at(7), {
      bases: [{ image: BASE, digest: D3 }],
      target: { digest: T1 },
      provenance: { digest: T1, result: { verdict: 'Unknown', message: '' } },
    });
    assert.equal(next.status.landed?.digest, T1);
    // The landed image is for the old revision: the pending change is built at once.
    assert.equal(next.action.kind, 'start');
    assert.equal(next.status.build?.baseDigest, D3);
    assert.equal(next.status.history?.[0]?.phase, 'Succeeded');
    assert.deepEqual(
      next.events.map((e) => e.reason),
      ['Landed'],
    );
  });

  it('reports registry errors without losing the recorded digest', () => {
    const c = new Cycle();
    c.step(at(0));
    const d = c.step(at(10), { bases: [{ image: BASE, error: 'GET /v2/: 503' }] });
    assert.equal(d.status.bases?.[0]?.digest, D1);
    assert.equal(d.summary.reason, 'RegistryError');
    assert.equal(d.summary.ready, false);
  });

  it('a revision covers every base; its identity changes with any of them', () => {
    const t = trigger({ baseImages: [{ image: BASE }, { image: 'registry.example/base/node:22' }] });
    const r1 = revisionOf(t, [
      { image: BASE, digest: D1 },
      { image: 'registry.example/base/node:22', digest: D2 },
    ]);
    const r2 = revisionOf(t, [
      { image: BASE, digest: D1 },
      { image: 'registry.example/base/node:22', digest: D3 },
    ]);
    assert.notEqual(r1, r2);
    assert.equal(
      r1,
      revisionOf(t, [
        { image: 'registry.example/base/node:22', digest: D2 },
        { image: BASE, digest: D1 },
      ]),
    );
  });

  it('polls every 5 s at first, once a minute for long builds', () => {
    assert.deepEqual([0, 59_000, 60_000, 400_000, 3_600_000].map(pollInterval), [5_000, 5_000, 15_000, 30_000, 60_000]);
  });
});

describe('RebuildTrigger decision', () => {
  const gathered: Gathered = { bases: [{ image: BASE, digest: D1 }], target: { digest: T0 }, slot: FREE };

  it('is Ready and UpToDate while following unchanged bases, with observedGeneration', () => {
    const d = decideRebuildTrigger(trigger(), t0, gathered);
    const ready = d.status.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'True');
    assert.equal(ready?.observedGeneration, 1);
    assert.equal(d.status.conditions?.find((c) => c.type === 'UpToDate')?.status, 'True');
    assert.equal(d.status.observedGeneration, 1);
  });

  it('while suspended does not start builds but still follows one in flight', () => {
    const idle = decideRebuildTrigger(trigger({ suspend: true }), t0, {
      ...gathered,
      bases: [{ image: BASE, digest: D2 }],
    });
    assert.equal(idle.status.phase, 'Suspended');
    assert.equal(idle.action.kind, 'none');
    const inFlight = decideRebuildTrigger(
      trigger({ suspend: true }, { build: { phase: 'Running', id: 'r', correlationId: 'plx' } }),
      t0,
      gathered,
    );
    assert.equal(inFlight.action.kind, 'poll');
    const resumed = decideRebuildTrigger({ ...trigger(), status: idle.status }, at(1), gathered);
    assert.notEqual(resumed.status.phase, 'Suspended');
  });

  it('an invalid spec stalls without building, naming the field', () => {
    const d = decideRebuildTrigger(
      trigger({ build: { webhook: { url: 'https://b.example', body: '{not json' } } }),
      t0,
      gathered,
    );
    assert.equal(d.action.kind, 'none');
    const stalled = d.status.conditions?.find((c) => c.type === 'Stalled');
    assert.equal(stalled?.status, 'True');
    assert.match(stalled?.message ?? '', /build\.webhook\.body/);
  });
});

describe('Build slots', () => {
  it('lets `limit` build at once and serves the queue in the order triggers became ready', () => {
    const woken: string[] = [];
    const slots = new BuildSlots(2, (k) => woken.push(k));
    assert.equal(slots.check('ns/c', 30).available, true);
    assert.ok(slots.take('ns/c'));
    assert.equal(slots.check('ns/b', 20).available, true);
    assert.ok(slots.take('ns/b'));
    assert.deepEqual(slots.check('ns/z', 10), { available: false, position: 1, waiting: 1, limit: 2 });
    assert.deepEqual(
      slots.check('ns/a', 10),
      { available: false, position: 1, waiting: 2, limit: 2 },
      'same time: by name',
    );
    assert.equal(slots.take('ns/z'), false);
    slots.observe('ns/c', false); // c's build ended
    assert.deepEqual(woken, ['ns/a']);
    assert.equal(slots.take('ns/z'), false, 'z is behind a');
    assert.ok(slots.take('ns/a'));
    assert.deepEqual(slots.stats(), { inFlight: 2, queued: 1 });
    slots.forget('ns/b');
    assert.deepEqual(woken, ['ns/a', 'ns/z']);
  });

  it('rebuilds its count from status after a restart', () => {
    const slots = new BuildSlots(1, () => undefined);
    slots.observe('ns/x', true);
    assert.equal(slots.check('ns/y', 0).available, false);
    assert.throws(() => new BuildSlots(0, () => undefined), /at least 1/);
  });
});

describe('Maintenance window', () => {
  const w = { schedule: '0 2 * * 1-5', duration: '2h', timeZone: 'Europe/Berlin' };
  it('is open inside the window, in the given time zone', () => {
    // Monday 2026-11-23 02:30 in Berlin is 01:30 UTC.
    assert.deepEqual(windowState(w, new Date('2026-11-23T01:30:00Z')), {
      open: true,
      closesAt: new Date('2026-11-23T03:00:00Z'),
    });
  });
  it('is closed outside, and says when it opens', () => {
    // Saturday: next opening is Monday 02:00 Berlin.
    assert.deepEqual(windowState(w, new Date('2026-11-21T12:00:00Z')), {
      open: false,
      opensAt: new Date('2026-11-23T01:00:00Z'),
    });
    assert.deepEqual(windowState(undefined, t0), { open: true });
  });
});

describe('Provenance', () => {
  const hex = '2'.repeat(64);
  it('reads SLSA v0.2 materials and v1 resolved dependencies, ignoring what is not an image', () => {
    assert.deepEqual(
      materialsOf({
        predicate: {
          materials: [
            { uri: 'pkg:docker/base/python@3.12?platform=linux%2Famd64', digest: { sha256: hex } },
            { uri: 'git+https://x', digest: { sha1: 'abc' } },
          ],
        },
      }),
      [{ digest: D2, name: 'base/python', source: 'attestation' }],
    );
    assert.deepEqual(
      materialsOf({
        predicate: {
          buildDefinition: {
            resolvedDependencies: [{ uri: 'pkg:docker/docker.io/library/alpine@3', digest: { sha256: hex } }],
          },
        },
      }),
      [{ digest: D2, name: 'docker.io/library/alpine', source: 'attestation' }],
    );
    assert.deepEqual(materialsOf('nonsense'), []);
    assert.deepEqual(
      materialsOf({ predicate: { materials: [{ uri: 'pkg:docker/x', digest: { sha256: 'short' } }] } }),
      [],
    );
  });
  it('judges: verified, mismatched by annotation or by the same repository, unknown', () => {
    const expected = { repositories: ['base/python'], digests: [D2] };
    assert.equal(judge([{ digest: D2, source: 'attestation', name: 'base/python' }], expected).verdict, 'Verified');
    assert.equal(judge([{ digest: D1, source: 'annotation' }], expected).verdict, 'Mismatch');
    assert.equal(judge([{ digest: D1, source: 'attestation', name: 'base/python' }], expected).verdict, 'Mismatch');
    assert.equal(
      judge([{ digest: D1, source: 'attestation', name: 'golang' }], expected).verdict,
      'Unknown',
      'a build-stage image is not the base',
    );
  });
});
