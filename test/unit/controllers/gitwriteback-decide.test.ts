// The GitWriteBack's decisions without I/O: which policies and values it writes, how long it
// waits to batch them, what status says after each kind of update run, and the commit message.
import assert from 'node:assert/strict';
import type { GitWriteBack, ImagePolicy, RebuildTrigger } from '../../../src/api/v1alpha1/index.ts';
import { rebuildText } from '../../../src/rollout/git/message.ts';
import {
  WriteBackReasons,
  batchDelayMs,
  decideFailure,
  decideOutcome,
  policiesOf,
  targetsOf,
  unwritten,
  withIntent,
} from '../../../src/controllers/gitwriteback/decide.ts';
import { gitCredentials } from '../../../src/controllers/gitwriteback/reconciler.ts';
import { commitMessage } from '../../../src/rollout/git/message.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const SHA = 'a'.repeat(40);
const now = new Date('2026-12-06T10:00:00Z');
const at = (s: number): string => new Date(now.getTime() + s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function writeBack(status: GitWriteBack['status'] = {}): GitWriteBack {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'GitWriteBack',
    metadata: { name: 'fleet', namespace: 'shop', generation: 2 },
    spec: { url: 'https://git.example/fleet.git', branch: 'main', batchWindow: '5s' },
    status,
  };
}

function policy(
  name: string,
  desired?: { digest: string; tag?: string; since?: string },
  over: Partial<ImagePolicy['spec']> = {},
): ImagePolicy {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name, namespace: 'shop' },
    spec: {
      image: `registry.example/shop/${name}`,
      follow: { tag: '1.4' },
      workloads: {},
      rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'fleet' }, format: 'TagAndDigest' } },
      ...over,
    },
    status: {
      latest: {
        tag: '1.4',
        digest: desired?.digest ?? D1,
        verified: true,
        checks: [
          { name: 'registry', passed: true, message: 'from an approved registry' },
          { name: 'digest', passed: true, message: 'served' },
        ],
      },
      ...(desired ? { gitOps: { desired: { ...desired, reason: 'Rollout', since: desired.since ?? at(-60) } } } : {}),
    },
  };
}

describe('GitWriteBack decisions', () => {
  it('writes for the GitOps policies that name it, with what passed and what rebuilt the digest', () => {
    const policies = [
      policy('web', { digest: D2, tag: '1.4' }),
      policy('auto', { digest: D2 }, { rollout: { mode: 'Auto' } }),
      policy('other', { digest: D2 }, { rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'another' } } } }),
    ];
    const mine = policiesOf(writeBack(), policies);
    assert.deepEqual(
      mine.map((p) => p.metadata?.name),
      ['web'],
    );
    const trigger: RebuildTrigger = {
      metadata: { name: 'web', namespace: 'shop' },
      spec: { baseImages: [{ image: 'python:3.12' }], target: { image: 'registry.example/shop/web:1.4' }, build: {} },
      status: {
        bases: [{ image: 'python:3.12', digest: D2, previousDigest: D1 }],
        build: { baseImage: 'python:3.12', id: 'b-7', url: 'https://ci.example/b-7' },
        landed: { digest: D2 },
      },
    };
    const [target] = targetsOf(mine, [trigger]);
    assert.deepEqual(target && { ...target, context: undefined }, {
      policy: { namespace: 'shop', name: 'web' },
      repository: 'registry.example/shop/web',
      tag: '1.4',
      digest: D2,
      format: 'TagAndDigest',
      context: undefined,
    });
    assert.deepEqual(target?.context.checks, [
      { name: 'registry', message: 'from an approved registry' },
      { name: 'digest', message: 'served' },
    ]);
    assert.equal(
      target?.context.rebuild && rebuildText(target.context.rebuild),
      'RebuildTrigger shop/web: base python:3.12 sha256:111111111111 → sha256:222222222222 (build b-7 https://ci.example/b-7)',
    );
  });

  it('knows what git does not say yet, and waits for a batch to gather within bounds', () => {
    const wb = writeBack({ policies: [{ name: 'web', digest: D1, tag: '1.4' }] });
    const policies = [
      policy('web', { digest: D2, tag: '1.4', since: at(-2) }),
      policy('api', { digest: D2, since: at(-1) }),
    ];
    const targets = targetsOf(policies, []);
    assert.deepEqual(
      unwritten(wb, targets).map((t) => t.policy.name),
      ['web', 'api'],
    );
    assert.equal(batchDelayMs(wb, policies, unwritten(wb, targets), now), 4_000, '5 s after the newest decision');
    const old = [policy('web', { digest: D2, since: at(-49) }), policy('api', { digest: D2, since: at(-1) })];
    assert.equal(
      batchDelayMs(wb, old, unwritten(wb, targetsOf(old, [])), now),
      1_000,
      'never more than 10 windows after the oldest',
    );
    const quiet = [policy('web', { digest: D2, since: at(-6) })];
    assert.equal(batchDelayMs(wb, quiet, unwritten(wb, targetsOf(quiet, [])), now), 0);
  });

  it('records the intent before the push, then the commit per policy after it', () => {
    const wb = writeBack({ policies: [{ name: 'web', digest: D1, commit: 'old', committedAt: at(-3600) }] });
    const targets = targetsOf([policy('web', { digest: D2, tag: '1.4' }), policy('api', { digest: D1 })], []);
    const withPending = withIntent(
      wb.status!,
      { changeId: 'c1', baseCommit: 'b'.repeat(40) },
      targets,
      new Set(['shop/web']),
      now,
    );
    assert.deepEqual(withPending.pending, {
      changeID: 'c1',
      baseCommit: 'b'.repeat(40),
      since: '2026-12-06T10:00:00Z',
      policies: [{ name: 'web', digest: D2, tag: '1.4' }],
    });
    const pushed = decideOutcome(
      { ...wb, status: withPending },
      targets,
      {
        kind: 'pushed',
        intent: {
          changeId: 'c1',
          baseCommit: 'b'.repeat(40),
          changes: [{ policy: 'shop/web', file: 'a.yaml', line: 3, from: 'x', to: 'y' }],
        },
        sha: SHA,
        branch: 'main',
        message: 'Update image: web\n\nbody\n',
        files: new Map([['shop/web', ['a.yaml']]]),
        problems: [],
      },
      now,
    );
    assert.equal(pushed.status.pending, undefined);
    assert.deepEqual(pushed.status.lastCommit, {
      sha: SHA,
      shortSHA: SHA.slice(0, 12),
      time: '2026-12-06T10:00:00Z',
      branch: 'main',
      changeID: 'c1',
      message: 'Update image: web',
    });
    assert.deepEqual(pushed.status.policies, [
      { name: 'web', digest: D2, tag: '1.4', commit: SHA, committedAt: '2026-12-06T10:00:00Z', files: ['a.yaml'] },
      {
        name: 'api',
        digest: D1,
        message:
          'no file under spec.paths names shop/api (a marker) or registry.example/shop/api (a Kustomize images entry)',
      },
    ]);
    assert.deepEqual(
      pushed.events.map((e) => e.reason),
      ['Committed'],
    );
    assert.equal(pushed.status.conditions?.find((c) => c.type === 'Ready')?.reason, WriteBackReasons.Committed);
  });

  it('a change pushed before a crash is recorded from the pending values, not from newer ones', () => {
    const wb = writeBack({
      policies: [{ name: 'api', digest: D1, commit: 'x', committedAt: at(-10) }],
      pending: { changeID: 'c9', baseCommit: 'b', since: at(-5), policies: [{ name: 'web', digest: D1, tag: '1.3' }] },
    });
    const targets = targetsOf([policy('web', { digest: D2, tag: '1.4' })], []);
    const d = decideOutcome(wb, targets, { kind: 'recovered', changeId: 'c9', sha: SHA }, now);
    assert.equal(d.status.pending, undefined);
    assert.deepEqual(d.status.policies, [
      { name: 'api', digest: D1, commit: 'x', committedAt: at(-10) },
      { name: 'web', digest: D1, tag: '1.3', commit: SHA, committedAt: '2026-12-06T10:00:00Z' },
    ]);
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['CommitRecovered'],
    );
  });

  it('files that already say it: the head carries every value, no event', () => {
    const targets = targetsOf([policy('web', { digest: D2, tag: '1.4' })], []);
    const d = decideOutcome(
      writeBack(),
      targets,
      { kind: 'unchanged', head: SHA, files: new Map([['shop/web', ['k.yaml']]]), problems: [] },
      now,
    );
    assert.deepEqual(d.status.policies, [
      { name: 'web', digest: D2, tag: '1.4', commit: SHA, committedAt: '2026-12-06T10:00:00Z', files: ['k.yaml'] },
    ]);
    assert.deepEqual(d.events, []);
  });

  it('a refused credential stalls it; other git failures are retried; one Warning per new message', () => {
    const denied = decideFailure(writeBack(), 'git fetch: Authentication failed', true, now);
    assert.equal(denied.status.conditions?.find((c) => c.type === 'Stalled')?.reason, 'AccessDenied');
    assert.equal(denied.events.length, 1);
    const again = decideFailure(writeBack(denied.status), 'git fetch: Authentication failed', true, now);
    assert.deepEqual(again.events, []);
    const flaky = decideFailure(writeBack(), 'git fetch: connection reset', false, now);
    assert.equal(
      flaky.status.conditions?.find((c) => c.type === 'Stalled'),
      undefined,
    );
    assert.equal(flaky.status.conditions?.find((c) => c.type === 'Ready')?.reason, 'GitOperationFailed');
  });

  it('reads the Secret with the keys Flux uses', () => {
    assert.deepEqual(gitCredentials({ username: 'bot', password: 'pw', 'ca.crt': 'PEM' }), {
      username: 'bot',
      password: 'pw',
      caCert: 'PEM',
    });
    assert.deepEqual(gitCredentials({ identity: 'KEY', known_hosts: 'host key' }), {
      identity: 'KEY',
      knownHosts: 'host key',
    });
    assert.deepEqual(gitCredentials({ bearerToken: 't' }), { bearerToken: 't' });
    assert.deepEqual(gitCredentials(undefined), {});
  });

  it('a message template gets its placeholders; the trailer is always there', () => {
    const text = commitMessage('chore(images): {{summary}} [{{count}} by {{writeBack}}] {{unknown}}', {
      writeBack: 'shop/fleet',
      changeId: 'c1',
      contexts: [
        {
          policy: 'shop/web',
          image: 'registry.example/shop/web',
          tag: '1.4',
          digest: D2,
          reason: 'Rollout',
          checks: [],
        },
      ],
      changes: [{ policy: 'shop/web', file: 'a.yaml', line: 1, from: `registry.example/shop/web:1.4@${D1}`, to: 'x' }],
    });
    assert.equal(
      text,
      'chore(images): Update image: web sha256:111111111111 → 1.4@sha256:222222222222 [1 by shop/fleet] {{unknown}}\n\nPatchline-Change: c1\n',
    );
  });
});
