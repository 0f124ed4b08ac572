// Pull request mode's decisions, without I/O: what is declined and for how long, what status
// says of an open request, and what a merge or a close changes.
import assert from 'node:assert/strict';
import type { GitWriteBack } from '../../../src/api/v1alpha1/index.ts';
import { decideOutcome, type WriteTarget } from '../../../src/controllers/gitwriteback/decide.ts';
import { proposable, recordPullRequestEnd, stillDeclined } from '../../../src/controllers/gitwriteback/pull-request.ts';
import type { PullRequest } from '../../../src/rollout/forge/types.ts';

const D = (c: string): string => `sha256:${c.repeat(64)}`;
const now = new Date('2026-12-06T10:00:00Z');

function target(name: string, digest: string): WriteTarget {
  return {
    policy: { namespace: 'shop', name },
    repository: `registry.example/shop/${name}`,
    digest,
    format: 'TagAndDigest',
    context: { policy: `shop/${name}`, image: `registry.example/shop/${name}`, digest, reason: 'Rollout', checks: [] },
  };
}

function writeBack(status: GitWriteBack['status'] = {}, annotations: Record<string, string> = {}): GitWriteBack {
  return {
    metadata: { name: 'fleet', namespace: 'shop', generation: 3, annotations },
    spec: {
      url: 'https://github.com/acme/deploy.git',
      branch: 'main',
      push: { branch: 'patchline/updates' },
      pullRequest: { provider: 'github' },
    },
    status,
  };
}

const pr = (over: Partial<PullRequest> = {}): PullRequest => ({
  number: 12,
  url: 'https://github.com/acme/deploy/pull/12',
  state: 'open',
  title: 'Update image: web',
  body: '',
  ...over,
});

describe('GitWriteBack pull request decisions', () => {
  it('declines a digest until the policy accepts a newer one or a reconcile is requested', () => {
    const declined = [{ name: 'web', digest: D('2'), pullRequest: '#12', at: '2026-12-06T09:00:00Z' }];
    const wb = writeBack({ declined });
    assert.deepEqual(stillDeclined(wb, [target('web', D('2'))]), declined);
    assert.deepEqual(
      proposable([target('web', D('2')), target('api', D('2'))], declined).map((t) => t.policy.name),
      ['api'],
    );
    assert.deepEqual(stillDeclined(wb, [target('web', D('3'))]), [], 'a newer digest');
    assert.deepEqual(stillDeclined(wb, []), [], 'the policy is gone');
    const requested = writeBack(
      { declined, lastHandledReconcileAt: 'a' },
      { 'patchline.dev/reconcile-requested-at': 'b' },
    );
    assert.deepEqual(stillDeclined(requested, [target('web', D('2'))]), []);
    const handled = writeBack(
      { declined, lastHandledReconcileAt: 'b' },
      { 'patchline.dev/reconcile-requested-at': 'b' },
    );
    assert.deepEqual(stillDeclined(handled, [target('web', D('2'))]), declined, 'a request already handled');
  });

  it('records a merge: the proposed policies are committed at the merge commit, others untouched', () => {
    const wb = writeBack({
      pullRequest: {
        number: 12,
        state: 'Open',
        headCommit: 'h'.repeat(40),
        policies: [{ name: 'web', digest: D('2') }],
      },
      policies: [
        { name: 'web', digest: D('2'), pullRequest: 'https://github.com/acme/deploy/pull/12', message: 'proposed …' },
        { name: 'api', digest: D('1'), commit: 'c'.repeat(40), committedAt: '2026-12-01T00:00:00Z' },
      ],
    });
    const merged = recordPullRequestEnd(
      wb,
      pr({ state: 'merged', mergeCommit: 'm'.repeat(40), mergedAt: '2026-12-06T09:59:00Z' }),
      now,
    );
    assert.deepEqual(merged.status.policies, [
      { name: 'web', digest: D('2'), commit: 'm'.repeat(40), committedAt: '2026-12-06T09:59:00Z' },
      { name: 'api', digest: D('1'), commit: 'c'.repeat(40), committedAt: '2026-12-01T00:00:00Z' },
    ]);
    assert.deepEqual(
      [merged.status.pullRequest?.state, merged.status.pullRequest?.mergeCommit],
      ['Merged', 'm'.repeat(40)],
    );
    assert.deepEqual(
      merged.events.map((e) => e.reason),
      ['PullRequestMerged'],
    );
    const noCommit = recordPullRequestEnd(wb, pr({ state: 'merged' }), now);
    assert.equal(
      noCommit.status.pullRequest?.mergeCommit,
      'h'.repeat(40),
      'a forge that names no merge commit: the head pushed',
    );
  });

  it('records a close: the proposed digests are declined, with a message the ImagePolicy shows', () => {
    const wb = writeBack({
      pullRequest: { number: 12, state: 'Open', policies: [{ name: 'web', digest: D('2'), tag: '1.4' }] },
      policies: [{ name: 'web', digest: D('2'), tag: '1.4', pullRequest: 'https://github.com/acme/deploy/pull/12' }],
    });
    const closed = recordPullRequestEnd(wb, pr({ state: 'closed', closedAt: '2026-12-06T09:58:00Z' }), now);
    assert.deepEqual(closed.status.declined, [
      {
        name: 'web',
        digest: D('2'),
        tag: '1.4',
        pullRequest: 'https://github.com/acme/deploy/pull/12',
        at: '2026-12-06T09:58:00Z',
      },
    ]);
    assert.match(
      closed.status.policies?.[0]?.message ?? '',
      /^declined: https:\/\/github.com\/acme\/deploy\/pull\/12 was closed without merging/,
    );
    assert.deepEqual(
      closed.events.map((e) => [e.type, e.reason]),
      [['Warning', 'PullRequestClosed']],
    );
    // The next run keeps the Declined condition while the digest is held back.
    const next = decideOutcome(
      { ...wb, status: closed.status },
      [],
      { kind: 'unchanged', head: 'b'.repeat(40), files: new Map(), problems: [] },
      now,
      { declined: closed.status.declined },
    );
    const condition = next.status.conditions?.find((c) => c.type === 'Declined');
    assert.deepEqual([condition?.status, condition?.reason], ['True', 'PullRequestClosed']);
    assert.match(next.status.policies?.find((p) => p.name === 'web')?.message ?? '', /^declined/);
  });

  it('after a push, records the open request and what it proposes; the policies wait for the merge', () => {
    const wb = writeBack({ policies: [{ name: 'web', digest: D('1'), commit: 'c'.repeat(40) }] });
    const outcome = {
      kind: 'pushed' as const,
      intent: {
        changeId: 'ch1',
        baseCommit: 'b'.repeat(40),
        changes: [{ policy: 'shop/web', file: 'apps/web.yaml', line: 9, from: D('1'), to: D('2') }],
      },
      sha: 'p'.repeat(40),
      branch: 'patchline/updates',
      message: 'Update image: web',
      files: new Map([['shop/web', ['apps/web.yaml']]]),
      problems: [],
    };
    const opened = decideOutcome(wb, [target('web', D('2'))], outcome, now, {
      proposal: { pullRequest: pr(), action: 'created', warnings: ['labels not set (HTTP 403)'] },
    });
    assert.deepEqual(opened.status.pullRequest, {
      number: 12,
      url: 'https://github.com/acme/deploy/pull/12',
      state: 'Open',
      headBranch: 'patchline/updates',
      headCommit: 'p'.repeat(40),
      changeID: 'ch1',
      title: 'Update image: web',
      openedAt: '2026-12-06T10:00:00Z',
      updatedAt: '2026-12-06T10:00:00Z',
      policies: [{ name: 'web', digest: D('2') }],
    });
    const entry = opened.status.policies?.find((p) => p.name === 'web');
    assert.deepEqual([entry?.commit, entry?.pullRequest], [undefined, 'https://github.com/acme/deploy/pull/12']);
    assert.deepEqual(
      opened.events.map((e) => e.reason),
      ['PullRequestOpened', 'PullRequestIncomplete'],
    );
    const ready = opened.status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['True', 'PullRequestOpen']);

    const refused = decideOutcome(wb, [target('web', D('2'))], outcome, now, {
      proposal: { warnings: [], error: { message: 'GitHub refused the credentials (HTTP 401)', retryable: false } },
    });
    assert.deepEqual(
      refused.status.conditions?.filter((c) => c.status !== 'Unknown').map((c) => [c.type, c.status, c.reason]),
      [
        ['Ready', 'False', 'PullRequestFailed'],
        ['Stalled', 'True', 'PullRequestFailed'],
      ],
    );
    assert.match(
      refused.status.policies?.find((p) => p.name === 'web')?.message ?? '',
      /the pull request could not be opened: GitHub refused/,
    );
  });
});
