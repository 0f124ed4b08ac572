// Pull request mode of a GitWriteBack against a real git server (git http-backend over the
// repositories these tests read back with git) and a GitHub-shaped forge: a request opened
// with the evidence, kept when nothing changed, updated (not duplicated) when a newer digest
// arrives, a merge that moves the policies on, a close that declines the digest, a run that
// dies between the push and the status write, throttling, and a GitHub App's installation
// token used for git over HTTPS and for the API.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { GitWriteBack, ImagePolicy } from '../../src/api/v1alpha1/index.ts';
import { FakeGithub } from '../support/fake-github.ts';
import { GitHttpServer, GitRepos, GitSshServer } from '../support/git-server.ts';
import { WriteBackHarness } from '../support/writeback-harness.ts';

const D = (c: string): string => `sha256:${c.repeat(64)}`;
const IMAGE = 'registry.example/shop/web';

const deployment = (digest: string): string =>
  [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: web',
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: app',
    `          image: ${IMAGE}:1.4@${digest} # {"$imagepolicy": "shop:web"}`,
    '',
  ].join('\n');

function policy(digest: string): ImagePolicy {
  return {
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      image: IMAGE,
      follow: { tag: '1.4' },
      workloads: {},
      rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'fleet' } } },
    },
    status: {
      latest: {
        tag: '1.4',
        digest,
        verified: true,
        checks: [
          { name: 'registry', passed: true, message: 'from an approved registry' },
          { name: 'signature', passed: true, message: 'signed by key cosign-shop' },
        ],
      },
      gitOps: { desired: { digest, tag: '1.4', reason: 'Rollout', since: '2026-12-06T00:00:00Z' } },
      workloads: [{ kind: 'Deployment', name: 'web', container: 'app', runningDigest: D('1') }],
    },
  };
}

describe('pull request write-back against a real git server and a GitHub-shaped forge', function () {
  this.timeout(60_000);
  let repos: GitRepos;
  let http: GitHttpServer;
  let github: FakeGithub;
  const tokens = ['ghp_patchline'];
  const harnesses: WriteBackHarness[] = [];

  before(async () => {
    repos = new GitRepos();
    http = await GitHttpServer.start({ tokens }, repos);
    const { publicKey } = appKeys;
    github = await FakeGithub.start({ repos, tokens, app: { id: '4242', installationId: 77, publicKey } });
  });
  after(async () => {
    await github.stop();
    await http.stop();
    for (const h of harnesses) h.remove();
    repos.remove();
  });

  const appKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

  async function setUp(repo: string, spec: Partial<GitWriteBack['spec']> = {}): Promise<WriteBackHarness> {
    await repos.create(`acme/${repo}`, { 'apps/web.yaml': deployment(D('1')) });
    const h = new WriteBackHarness({
      metadata: { name: 'fleet', namespace: 'shop', generation: 1 },
      spec: {
        url: http.url(`acme/${repo}`),
        branch: 'main',
        push: { branch: 'patchline/updates' },
        paths: ['apps'],
        secretRef: { name: 'git' },
        batchWindow: '0s',
        pullRequest: {
          provider: 'github',
          apiURL: github.api,
          labels: ['patchline', 'security'],
          reviewers: ['alice', 'acme/platform'],
        },
        ...spec,
      },
    });
    h.secrets.set('git', { username: 'git', password: 'ghp_patchline' });
    h.policies = [policy(D('2'))];
    harnesses.push(h);
    return h;
  }

  /** Forge requests and git pushes made by one run. */
  async function counted(h: WriteBackHarness, options: { crashAtCommit?: number } = {}) {
    const forgeBefore = github.requests.length;
    const pushesBefore = http.requests.filter((r) => r.method === 'POST' && r.url.endsWith('git-receive-pack')).length;
    const result = await h.run(options);
    return {
      result,
      forge: github.requests.slice(forgeBefore).map((r) => `${r.method} ${r.path}`),
      pushes:
        http.requests.filter((r) => r.method === 'POST' && r.url.endsWith('git-receive-pack')).length - pushesBefore,
    };
  }

  it('opens one pull request with the evidence, keeps it while nothing changes, updates it for a newer digest, and follows the merge', async () => {
    const h = await setUp('merge');
    const first = await counted(h);
    assert.equal(first.pushes, 1);
    assert.deepEqual(first.forge, [
      'GET /repos/acme/merge/pulls',
      'POST /repos/acme/merge/pulls',
      'POST /repos/acme/merge/issues/1/labels',
      'POST /repos/acme/merge/pulls/1/requested_reviewers',
    ]);
    const [pr] = github.open('acme', 'merge');
    assert.ok(pr);
    assert.equal(pr.head, 'patchline/updates');
    assert.match(pr.title, /^Update image: web sha256:111111111111 → 1\.4@sha256:222222222222$/);
    assert.match(pr.body, /\| signature \| signed by key cosign-shop \|/);
    assert.match(pr.body, /\| Reaches \| Deployment\/web \(app\) \|/);
    assert.deepEqual(
      [pr.labels, pr.reviewers],
      [
        ['patchline', 'security'],
        ['alice', 'platform'],
      ],
    );
    assert.match(await repos.file('acme/merge', 'apps/web.yaml', 'patchline/updates'), new RegExp(D('2')));
    assert.match(await repos.file('acme/merge', 'apps/web.yaml', 'main'), new RegExp(D('1')), 'main is untouched');
    const status = h.wb.status!;
    assert.equal(status.pullRequest?.state, 'Open');
    assert.equal(status.pullRequest?.number, 1);
    const entry = status.policies?.find((p) => p.name === 'web');
    assert.equal(entry?.commit, undefined, 'a proposal is not a commit the GitOps engine applies');
    assert.equal(entry?.pullRequest, pr && `${github.api}/acme/merge/pull/1`);
    assert.ok(h.reasons().includes('PullRequestOpened'));
    assert.equal(status.conditions?.find((c) => c.type === 'Ready')?.reason, 'PullRequestOpen');

    const again = await counted(h);
    assert.deepEqual([again.pushes, again.forge], [0, ['GET /repos/acme/merge/pulls/1']], 'nothing new: one read');

    h.policies = [policy(D('3'))];
    const newer = await counted(h);
    assert.equal(newer.pushes, 1);
    assert.deepEqual(newer.forge, ['GET /repos/acme/merge/pulls/1', 'PATCH /repos/acme/merge/pulls/1']);
    assert.equal(github.open('acme', 'merge').length, 1, 'the same request, not a second one');
    assert.match(github.open('acme', 'merge')[0]!.title, /1\.4@sha256:333333333333$/);
    assert.match(await repos.file('acme/merge', 'apps/web.yaml', 'patchline/updates'), new RegExp(D('3')));
    assert.equal(
      (await repos.log('acme/merge', 'patchline/updates')).length,
      2,
      'the branch is rebuilt on main, not stacked',
    );
    assert.ok(h.reasons().includes('PullRequestUpdated'));

    const kept = await counted(h);
    assert.equal(kept.pushes, 0, 'kept: the edits stay in the working copy, uncommitted');
    const merge = await github.merge(1);
    const merged = await counted(h);
    assert.equal(merged.pushes, 0);
    assert.equal(h.wb.status?.pullRequest?.state, 'Merged');
    assert.equal(h.wb.status?.pullRequest?.mergeCommit, merge);
    const after = h.wb.status?.policies?.find((p) => p.name === 'web');
    assert.deepEqual([after?.digest, after?.commit, after?.pullRequest], [D('3'), merge, undefined]);
    assert.ok(h.reasons().includes('PullRequestMerged'));
    assert.equal(h.wb.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'UpToDate');
    assert.equal(github.pulls.length, 1, 'a merged change opens nothing new');

    // The forge deleted the head branch after the merge: the next change pushes it anew.
    await repos.deleteBranch('acme/merge', 'patchline/updates');
    h.policies = [policy(D('7'))];
    const next = await counted(h);
    assert.equal(next.pushes, 1);
    assert.deepEqual(next.forge, [
      'GET /repos/acme/merge/pulls',
      'POST /repos/acme/merge/pulls',
      'POST /repos/acme/merge/issues/2/labels',
      'POST /repos/acme/merge/pulls/2/requested_reviewers',
    ]);
    assert.equal(github.open('acme', 'merge').length, 1);
    assert.match(await repos.file('acme/merge', 'apps/web.yaml', 'patchline/updates'), new RegExp(D('7')));
  });

  it('declines the digest of a request closed without merging, until a newer digest arrives or a reconcile is requested', async () => {
    const h = await setUp('close');
    await h.run();
    github.close(github.open('acme', 'close')[0]!.number);
    const closed = await counted(h);
    assert.equal(closed.pushes, 0);
    assert.deepEqual(
      h.wb.status?.declined?.map((d) => [d.name, d.digest]),
      [['web', D('2')]],
    );
    const declinedCondition = h.wb.status?.conditions?.find((c) => c.type === 'Declined');
    assert.equal(declinedCondition?.status, 'True');
    assert.match(
      h.wb.status?.policies?.find((p) => p.name === 'web')?.message ?? '',
      /^declined: .* was closed without merging/,
    );
    assert.ok(h.events.some((e) => e.type === 'Warning' && e.reason === 'PullRequestClosed'));

    const quiet = await counted(h);
    assert.deepEqual([quiet.pushes, quiet.forge.filter((r) => r.startsWith('POST'))], [0, []], 'not proposed again');
    assert.equal(github.open('acme', 'close').length, 0);

    h.wb = {
      ...h.wb,
      metadata: { ...h.wb.metadata, annotations: { 'patchline.dev/reconcile-requested-at': '2026-12-06T05:00:00Z' } },
    };
    await h.run();
    assert.equal(github.open('acme', 'close').length, 1, 'a requested reconcile proposes it again');
    assert.equal(h.wb.status?.declined?.length ?? 0, 0);
    assert.equal(
      h.wb.status?.conditions?.find((c) => c.type === 'Declined'),
      undefined,
    );

    github.close(github.open('acme', 'close')[0]!.number);
    await h.run();
    h.policies = [policy(D('4'))];
    await h.run();
    const open = github.open('acme', 'close');
    assert.equal(open.length, 1, 'a newer digest is proposed');
    assert.match(open[0]!.title, /sha256:444444444444$/);
  });

  it('never opens a second request when a run dies between the push and its status write', async () => {
    const h = await setUp('crash');
    // Commit 1 records the intent, commit 2 the outcome: the run dies after the push and the create.
    const crashed = await counted(h, { crashAtCommit: 2 });
    assert.equal(crashed.result, 'crashed');
    assert.equal(github.open('acme', 'crash').length, 1);
    assert.ok(h.wb.status?.pending, 'the intent survived, the outcome did not');
    await h.run(); // finds the pushed change by its trailer
    const recovered = await counted(h); // finds the open request by its head branch
    assert.deepEqual(recovered.forge, ['GET /repos/acme/crash/pulls']);
    assert.equal(recovered.pushes, 0);
    assert.equal(github.pulls.filter((p) => p.repo === 'crash').length, 1, 'one request, found again');
    assert.equal(h.wb.status?.pullRequest?.number, github.open('acme', 'crash')[0]!.number);
    assert.equal(h.wb.status?.pending, undefined);

    // After that request is closed, a newer digest gets a request of its own.
    h.policies = [policy(D('5'))];
    github.close(github.open('acme', 'crash')[0]!.number);
    await h.run(); // records the close (declines D2) and proposes D5
    assert.equal(github.open('acme', 'crash').length, 1);
    assert.equal(github.pulls.filter((p) => p.repo === 'crash').length, 2);
  });

  it('reports a forge that throttles after the push, keeps the push, and opens the request on the next run', async () => {
    const h = await setUp('throttle');
    github.failNext({ status: 200, body: [] }); // the find
    github.failNext({
      status: 403,
      body: { message: 'You have exceeded a secondary rate limit.' },
      headers: { 'retry-after': '30' },
    });
    const first = await counted(h);
    assert.equal(first.pushes, 1);
    assert.deepEqual(first.result, { requeueAfterMs: 30_000 });
    const ready = h.wb.status?.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['False', 'PullRequestFailed']);
    assert.match(ready?.message ?? '', /rate limiting/);
    assert.equal(
      h.wb.status?.conditions?.find((c) => c.type === 'Stalled'),
      undefined,
      'throttling is retried',
    );
    const second = await counted(h);
    assert.equal(second.pushes, 0, 'the branch already holds the change');
    assert.equal(github.open('acme', 'throttle').length, 1);
    assert.equal(h.wb.status?.pullRequest?.state, 'Open');
  });

  it('authenticates git and the API as a GitHub App, renewing a revoked installation token', async () => {
    const h = await setUp('app');
    h.secrets.set('git', {
      githubAppID: '4242',
      githubAppInstallationID: '77',
      githubAppPrivateKey: appKeys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    });
    await h.run();
    const pr = github.open('acme', 'app')[0];
    assert.ok(pr, 'opened with the installation token');
    const pushes = http.requests.filter((r) => r.url.includes('acme/app.git') && r.method === 'POST');
    assert.ok(
      pushes.length > 0 && pushes.every((r) => r.user === 'x-access-token'),
      'git used the token as x-access-token',
    );
    const minted = github.requests.filter((r) => r.path === '/app/installations/77/access_tokens').length;
    github.revokeInstallationTokens();
    h.policies = [policy(D('6'))];
    await h.run();
    assert.equal(github.requests.filter((r) => r.path === '/app/installations/77/access_tokens').length, minted + 1);
    assert.match(github.open('acme', 'app')[0]!.title, /sha256:666666666666$/);
  });

  it('pushes over SSH and opens the request with a token: one Secret holds both', async () => {
    const ssh = await GitSshServer.start(repos);
    try {
      const h = await setUp('ssh');
      h.wb = {
        ...h.wb,
        spec: {
          ...h.wb.spec,
          url: ssh.url('acme/ssh'),
          pullRequest: { provider: 'github', apiURL: github.api, repository: 'acme/ssh' },
        },
      };
      h.secrets.set('git', {
        identity: ssh.access.identity,
        known_hosts: ssh.access.knownHosts,
        password: 'ghp_patchline',
      });
      const run = await counted(h);
      assert.equal(run.pushes, 0, 'not over HTTP');
      assert.match(await repos.file('acme/ssh', 'apps/web.yaml', 'patchline/updates'), new RegExp(D('2')));
      assert.equal(github.open('acme', 'ssh').length, 1);
      assert.equal(h.wb.status?.pullRequest?.state, 'Open');
    } finally {
      await ssh.stop();
    }
  });

  it('refuses what cannot work with a Stalled condition: a forge repository that cannot be told, bad credentials', async () => {
    const h = await setUp('bad', {});
    h.wb = {
      ...h.wb,
      spec: { ...h.wb.spec, pullRequest: { provider: 'github', apiURL: github.api, repository: 'no-owner' } },
    };
    await h.run();
    const stalled = h.wb.status?.conditions?.find((c) => c.type === 'Stalled');
    assert.deepEqual([stalled?.reason], ['InvalidSpec']);
    assert.match(stalled?.message ?? '', /owner\/name/);

    const h2 = await setUp('badtoken');
    h2.secrets.set('git', { username: 'git', password: 'wrong' });
    await h2.run();
    const ready = h2.wb.status?.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'False');
    assert.ok(h2.wb.status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True'));
  });
});
