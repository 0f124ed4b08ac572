// GitLab merge requests, Azure DevOps Repos and Gitea/Forgejo pull requests against nock, with
// shapes from each API's documentation; and the forge a GitWriteBack's URL and Secret lead to.
import assert from 'node:assert/strict';
import nock from 'nock';
import { tokenAuth } from '../../../src/rollout/forge/auth.ts';
import { AZURE_DESCRIPTION_LIMIT, AzureReposForge } from '../../../src/rollout/forge/azure.ts';
import { GiteaForge } from '../../../src/rollout/forge/gitea.ts';
import { GitlabForge } from '../../../src/rollout/forge/gitlab.ts';
import { connectForge, forgeCredentials, locate } from '../../../src/rollout/forge/index.ts';
import { ServiceError } from '../../../src/runtime/json-call.ts';
import type { PullRequestDraft } from '../../../src/rollout/forge/types.ts';

const draft: PullRequestDraft = {
  head: 'patchline/updates',
  base: 'main',
  title: 'Update image: web',
  body: 'evidence',
  labels: ['patchline', 'security'],
  reviewers: [],
  draft: false,
};

const failsWith = (kind: ServiceError['kind'], message?: RegExp) => (err: unknown) =>
  err instanceof ServiceError && err.kind === kind && (!message || message.test(err.message));

describe('forges other than GitHub (nock)', () => {
  before(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  after(() => nock.enableNetConnect());

  describe('GitLab merge requests', () => {
    const API = 'https://gitlab.example.com/api/v4';
    const forge = () => new GitlabForge({ path: 'platform/apps/deploy', api: API }, tokenAuth('gitlab', 'glpat-x'));
    const gl = () => nock('https://gitlab.example.com').matchHeader('private-token', 'glpat-x');
    const project = '/api/v4/projects/platform%2Fapps%2Fdeploy';
    const mr = (iid: number, extra: Record<string, unknown> = {}) => ({
      id: 9000 + iid,
      iid,
      project_id: 42,
      title: 'Update image: web',
      description: 'evidence',
      state: 'opened',
      source_branch: 'patchline/updates',
      target_branch: 'main',
      web_url: `https://gitlab.example.com/platform/apps/deploy/-/merge_requests/${iid}`,
      sha: 'c0ffee'.padEnd(40, '0'),
      merge_commit_sha: null,
      squash_commit_sha: null,
      merged_at: null,
      closed_at: null,
      ...extra,
    });
    const query = (page: string) => ({
      state: 'opened',
      source_branch: 'patchline/updates',
      target_branch: 'main',
      per_page: '100',
      page,
    });

    it('finds the open merge request by source and target branch, following x-next-page', async () => {
      const scope = gl()
        .get(`${project}/merge_requests`)
        .query(query('1'))
        .reply(200, [mr(1, { source_branch: 'other' })], { 'x-next-page': '2', 'x-page': '1' })
        .get(`${project}/merge_requests`)
        .query(query('2'))
        .reply(200, [mr(4)], { 'x-next-page': '', 'x-page': '2' });
      const found = await forge().findOpen('patchline/updates', 'main');
      assert.deepEqual([found?.number, found?.state], [4, 'open']);
      scope.done();
    });

    it('opens a merge request with labels as a comma list, reviewers by id, "Draft:" for drafts', async () => {
      const scope = gl()
        .get('/api/v4/users')
        .query({ username: 'alice' })
        .reply(200, [{ id: 7, username: 'alice' }])
        .get('/api/v4/users')
        .query({ username: 'ghost' })
        .reply(200, [])
        .post(`${project}/merge_requests`, {
          source_branch: 'patchline/updates',
          target_branch: 'main',
          title: 'Draft: Update image: web',
          description: 'evidence',
          labels: 'patchline,security',
          reviewer_ids: [7],
          remove_source_branch: false,
        })
        .reply(201, mr(5, { title: 'Draft: Update image: web' }));
      const out = await forge().create({ ...draft, reviewers: ['alice', 'ghost'], draft: true });
      assert.equal(out.pullRequest.number, 5);
      assert.deepEqual(out.warnings, ['reviewer ghost not found']);
      scope.done();
    });

    it('finds the existing merge request when GitLab answers 409', async () => {
      const scope = gl()
        .post(`${project}/merge_requests`)
        .reply(409, { message: ['Another open merge request already exists for this source branch: !6'] })
        .get(`${project}/merge_requests`)
        .query(query('1'))
        .reply(200, [mr(6)]);
      const out = await forge().create(draft);
      assert.deepEqual([out.pullRequest.number, out.created], [6, false]);
      scope.done();
    });

    it('updates with PUT, reads merged (merge or squash commit) and closed, and reports refusals', async () => {
      gl()
        .put(`${project}/merge_requests/6`, { title: 't2', description: 'b2' })
        .reply(200, mr(6, { title: 't2', description: 'b2' }));
      assert.equal((await forge().update(6, { title: 't2', body: 'b2' })).body, 'b2');
      gl()
        .get(`${project}/merge_requests/6`)
        .reply(200, mr(6, { state: 'merged', squash_commit_sha: 's'.repeat(40), merged_at: '2026-12-06T03:00:00Z' }));
      const merged = await forge().get(6);
      assert.deepEqual([merged.state, merged.mergeCommit], ['merged', 's'.repeat(40)]);
      gl()
        .get(`${project}/merge_requests/7`)
        .reply(200, mr(7, { state: 'closed', closed_at: '2026-12-06T03:00:00Z' }));
      assert.equal((await forge().get(7)).state, 'closed');
      gl().get(`${project}/merge_requests`).query(query('1')).reply(401, { message: '401 Unauthorized' });
      await assert.rejects(forge().findOpen('patchline/updates', 'main'), failsWith('rejected', /HTTP 401/));
      gl().get(`${project}/merge_requests`).query(query('1')).reply(404, { message: '404 Project Not Found' });
      await assert.rejects(
        forge().findOpen('patchline/updates', 'main'),
        failsWith('rejected', /no project platform\/apps\/deploy/),
      );
      gl()
        .post(`${project}/merge_requests`)
        .reply(422, { message: ['Source branch does not exist'] });
      await assert.rejects(forge().create(draft), failsWith('rejected', /HTTP 422.*Source branch does not exist/));
      gl().get(`${project}/merge_requests/6`).reply(429, { message: 'Retry later' }, { 'retry-after': '30' });
      await assert.rejects(
        forge().get(6),
        (e: unknown) => failsWith('throttled')(e) && (e as ServiceError).retryAfterMs === 30_000,
      );
    });
  });

  describe('Azure DevOps Repos pull requests', () => {
    const ORG = 'https://dev.azure.com';
    const API = `${ORG}/contoso/shop`;
    const forge = () => new AzureReposForge({ api: API, repository: 'deploy' }, tokenAuth('azure', 'pat'));
    const az = () => nock(ORG).matchHeader('authorization', `Basic ${Buffer.from(':pat').toString('base64')}`);
    const base = '/contoso/shop/_apis/git/repositories/deploy/pullrequests';
    const pr = (id: number, extra: Record<string, unknown> = {}) => ({
      pullRequestId: id,
      status: 'active',
      title: 'Update image: web',
      description: 'evidence',
      sourceRefName: 'refs/heads/patchline/updates',
      targetRefName: 'refs/heads/main',
      repository: { id: 'r1', name: 'deploy', webUrl: `${ORG}/contoso/shop/_git/deploy` },
      lastMergeSourceCommit: { commitId: 'c0ffee'.padEnd(40, '0') },
      isDraft: false,
      ...extra,
    });
    const query = (skip: number) => ({
      'searchCriteria.sourceRefName': 'refs/heads/patchline/updates',
      'searchCriteria.targetRefName': 'refs/heads/main',
      'searchCriteria.status': 'active',
      $top: '100',
      $skip: String(skip),
      'api-version': '7.1',
    });

    it('finds the active pull request by source and target refs, a page of 100 at a time', async () => {
      const others = Array.from({ length: 100 }, (_, i) => pr(100 + i, { sourceRefName: 'refs/heads/someone-else' }));
      const scope = az()
        .get(base)
        .query(query(0))
        .reply(200, { value: others, count: 100 })
        .get(base)
        .query(query(100))
        .reply(200, { value: [pr(321)], count: 1 });
      const found = await forge().findOpen('patchline/updates', 'main');
      assert.deepEqual([found?.number, found?.url], [321, `${ORG}/contoso/shop/_git/deploy/pullrequest/321`]);
      scope.done();
    });

    it('opens a pull request with full ref names, labels, reviewers and a description within 4000 characters', async () => {
      const long = 'x'.repeat(5000);
      const scope = az()
        .post(base, {
          sourceRefName: 'refs/heads/patchline/updates',
          targetRefName: 'refs/heads/main',
          title: 'Update image: web',
          description: 'x'.repeat(AZURE_DESCRIPTION_LIMIT),
          isDraft: true,
          labels: [{ name: 'patchline' }, { name: 'security' }],
          reviewers: [{ id: 'd6245f20-2af8-44f4-9451-8107cb2767db' }],
        })
        .query({ 'api-version': '7.1' })
        .reply(201, pr(322));
      const out = await forge().create({
        ...draft,
        body: long,
        draft: true,
        reviewers: ['d6245f20-2af8-44f4-9451-8107cb2767db'],
      });
      assert.equal(out.pullRequest.number, 322);
      scope.done();
    });

    it('finds the existing pull request on TF401179, reads completed and abandoned, updates with PATCH', async () => {
      az()
        .post(base)
        .query({ 'api-version': '7.1' })
        .reply(409, {
          $id: '1',
          message: 'TF401179: An active pull request for the source and target branch already exists.',
          typeKey: 'GitPullRequestExistsException',
        })
        .get(base)
        .query(query(0))
        .reply(200, { value: [pr(323)], count: 1 });
      const out = await forge().create(draft);
      assert.deepEqual([out.pullRequest.number, out.created], [323, false]);
      az()
        .get(`${base}/323`)
        .query({ 'api-version': '7.1' })
        .reply(
          200,
          pr(323, {
            status: 'completed',
            lastMergeCommit: { commitId: 'm'.repeat(40) },
            closedDate: '2026-12-06T03:00:00Z',
          }),
        );
      const merged = await forge().get(323);
      assert.deepEqual(
        [merged.state, merged.mergeCommit, merged.mergedAt],
        ['merged', 'm'.repeat(40), '2026-12-06T03:00:00Z'],
      );
      az()
        .get(`${base}/324`)
        .query({ 'api-version': '7.1' })
        .reply(200, pr(324, { status: 'abandoned' }));
      assert.equal((await forge().get(324)).state, 'closed');
      az()
        .patch(`${base}/323`, { title: 't', description: 'b' })
        .query({ 'api-version': '7.1' })
        .reply(200, pr(323, { title: 't', description: 'b' }));
      assert.equal((await forge().update(323, { title: 't', body: 'b' })).title, 't');
      az().get(`${base}/325`).query({ 'api-version': '7.1' }).reply(203, '<html>Sign in</html>');
      await assert.rejects(forge().get(325), failsWith('rejected', /HTTP 203/));
    });
  });

  describe('Gitea / Forgejo pull requests', () => {
    const HOST = 'https://gitea.example.com';
    const forge = () =>
      new GiteaForge({ owner: 'ops', name: 'deploy', api: `${HOST}/api/v1` }, tokenAuth('gitea', 'tk'));
    const gt = () => nock(HOST).matchHeader('authorization', 'token tk');
    const pr = (n: number, extra: Record<string, unknown> = {}) => ({
      id: 500 + n,
      number: n,
      state: 'open',
      title: 'Update image: web',
      body: 'evidence',
      html_url: `${HOST}/ops/deploy/pulls/${n}`,
      head: { ref: 'patchline/updates', sha: 'c0ffee'.padEnd(40, '0') },
      base: { ref: 'main' },
      merged: false,
      merge_commit_sha: null,
      ...extra,
    });

    it('finds the open pull request by base and head, and nothing on 404', async () => {
      gt().get('/api/v1/repos/ops/deploy/pulls/main/patchline%2Fupdates').reply(200, pr(3));
      assert.equal((await forge().findOpen('patchline/updates', 'main'))?.number, 3);
      gt().get('/api/v1/repos/ops/deploy/pulls/main/patchline%2Fupdates').reply(404, { message: 'not found' });
      assert.equal(await forge().findOpen('patchline/updates', 'main'), undefined);
    });

    it('opens a pull request with label ids read from the repository, then requests reviewers', async () => {
      const labels = Array.from({ length: 50 }, (_, i) => ({ id: i + 1, name: `label-${i}` }));
      const scope = gt()
        .get('/api/v1/repos/ops/deploy/labels')
        .query({ page: '1', limit: '50' })
        .reply(200, labels)
        .get('/api/v1/repos/ops/deploy/labels')
        .query({ page: '2', limit: '50' })
        .reply(200, [{ id: 77, name: 'patchline' }])
        .post('/api/v1/repos/ops/deploy/pulls', {
          head: 'patchline/updates',
          base: 'main',
          title: 'WIP: Update image: web',
          body: 'evidence',
          labels: [77],
        })
        .reply(201, pr(8))
        .post('/api/v1/repos/ops/deploy/pulls/8/requested_reviewers', { reviewers: ['bob'] })
        .reply(201, []);
      const out = await forge().create({ ...draft, draft: true, reviewers: ['bob'] });
      assert.equal(out.pullRequest.number, 8);
      assert.deepEqual(out.warnings, ['labels not found in the repository: security']);
      scope.done();
    });

    it('finds the existing pull request on 409, reads merged, updates with PATCH', async () => {
      gt()
        .post('/api/v1/repos/ops/deploy/pulls')
        .reply(409, {
          message:
            'pull request already exists for these targets [id: 508, issue_id: 12, head_repo_id: 3, base_repo_id: 3, head_branch: patchline/updates, base_branch: main]',
        })
        .get('/api/v1/repos/ops/deploy/pulls/main/patchline%2Fupdates')
        .reply(200, pr(8));
      const out = await forge().create({ ...draft, labels: [] });
      assert.deepEqual([out.pullRequest.number, out.created], [8, false]);
      gt()
        .get('/api/v1/repos/ops/deploy/pulls/8')
        .reply(
          200,
          pr(8, { state: 'closed', merged: true, merge_commit_sha: 'm'.repeat(40), merged_at: '2026-12-06T03:00:00Z' }),
        );
      assert.deepEqual((await forge().get(8)).mergeCommit, 'm'.repeat(40));
      gt()
        .patch('/api/v1/repos/ops/deploy/pulls/8', { title: 't', body: 'b' })
        .reply(201, pr(8, { title: 't' }));
      assert.equal((await forge().update(8, { title: 't', body: 'b' })).title, 't');
      gt()
        .get('/api/v1/repos/ops/deploy/pulls/main/patchline%2Fupdates')
        .reply(403, { message: 'token does not have at least one of required scope(s)' });
      await assert.rejects(forge().findOpen('patchline/updates', 'main'), failsWith('rejected', /HTTP 403/));
    });
  });

  describe('connectForge', () => {
    it('tells host and path from https, ssh and scp-like URLs', () => {
      assert.deepEqual(locate('https://github.com/acme/deploy.git'), {
        scheme: 'https',
        host: 'github.com',
        path: 'acme/deploy',
      });
      assert.deepEqual(locate('ssh://git@gitlab.example.com:2222/platform/apps/deploy.git'), {
        scheme: 'https',
        host: 'gitlab.example.com',
        path: 'platform/apps/deploy',
      });
      assert.deepEqual(locate('git@github.com:acme/deploy.git'), {
        scheme: 'https',
        host: 'github.com',
        path: 'acme/deploy',
      });
      assert.deepEqual(locate('http://127.0.0.1:8080/acme/deploy'), {
        scheme: 'http',
        host: '127.0.0.1:8080',
        path: 'acme/deploy',
      });
    });

    it('derives each forge API from the repository URL, and reads the Secret keys git uses', async () => {
      nock('https://api.github.com')
        .get('/repos/acme/deploy/pulls/1')
        .matchHeader('authorization', 'Bearer t')
        .reply(200, { number: 1, state: 'open' });
      const gh = connectForge(
        { provider: 'github' },
        'https://github.com/acme/deploy.git',
        forgeCredentials({ username: 'git', password: 't' }),
      );
      assert.equal((await gh.forge.get(1)).number, 1);
      nock('https://ghe.example.com').get('/api/v3/repos/acme/deploy/pulls/1').reply(200, { number: 1, state: 'open' });
      const ghe = connectForge({ provider: 'github' }, 'git@ghe.example.com:acme/deploy.git', { token: 't' });
      assert.equal((await ghe.forge.get(1)).number, 1);
      nock('https://dev.azure.com')
        .get('/contoso/shop/_apis/git/repositories/deploy/pullrequests/2')
        .query({ 'api-version': '7.1' })
        .matchHeader('authorization', 'Bearer entra')
        .reply(200, { pullRequestId: 2, status: 'active' });
      const az = connectForge(
        { provider: 'azure' },
        'git@ssh.dev.azure.com:v3/contoso/shop/deploy',
        forgeCredentials({ bearerToken: 'entra' }),
      );
      assert.equal((await az.forge.get(2)).number, 2);
      const azHttps = connectForge({ provider: 'azure' }, 'https://contoso@dev.azure.com/contoso/shop/_git/deploy', {
        token: 'p',
      });
      assert.equal(azHttps.forge.provider, 'azure');
    });

    it('needs a token or a GitHub App, and owner/name paths for GitHub', () => {
      assert.throws(
        () => connectForge({ provider: 'gitlab' }, 'https://gitlab.com/a/b.git', {}),
        failsWith('rejected', /need a token/),
      );
      assert.throws(
        () => connectForge({ provider: 'github' }, 'https://github.com/a/b/c.git', { token: 't' }),
        failsWith('rejected', /owner\/name/),
      );
      assert.equal(
        connectForge({ provider: 'github', repository: 'a/b' }, 'https://github.com/a/b/c.git', { token: 't' }).forge
          .provider,
        'github',
      );
    });
  });
});
