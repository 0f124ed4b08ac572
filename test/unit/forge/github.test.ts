// GitHub pull requests and GitHub App authentication against nock, with request and response
// shapes from GitHub's REST documentation (API version 2022-11-28): exact query strings,
// bodies and headers, pagination, the "already exists" race, refusals, secondary rate limits
// and an installation token that expired.
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import nock from 'nock';
import { GithubAppAuth, tokenAuth } from '../../../src/rollout/forge/auth.ts';
import { GithubForge } from '../../../src/rollout/forge/github.ts';
import { ServiceError } from '../../../src/runtime/json-call.ts';
import type { PullRequestDraft } from '../../../src/rollout/forge/types.ts';

const API = 'https://api.github.com';
const repo = { owner: 'acme', name: 'deploy', api: API };
const draft: PullRequestDraft = {
  head: 'patchline/updates',
  base: 'main',
  title: 'Update image: web sha256:aaaa → sha256:bbbb',
  body: '## Evidence',
  labels: ['patchline', 'security'],
  reviewers: ['alice', 'acme/platform'],
  draft: false,
};

/** A pull request object as GitHub returns it (the fields Patchline reads, and some it does not). */
function pull(number: number, extra: Record<string, unknown> = {}) {
  return {
    id: 1000 + number,
    number,
    state: 'open',
    title: draft.title,
    body: draft.body,
    html_url: `https://github.com/acme/deploy/pull/${number}`,
    head: { ref: 'patchline/updates', sha: 'c0ffee'.padEnd(40, '0'), label: 'acme:patchline/updates' },
    base: { ref: 'main', sha: 'ba5e'.padEnd(40, '0') },
    merged_at: null,
    merge_commit_sha: 'tmp'.padEnd(40, '0'),
    closed_at: null,
    draft: false,
    ...extra,
  };
}

const failsWith = (kind: ServiceError['kind'], message?: RegExp) => (err: unknown) =>
  err instanceof ServiceError && err.kind === kind && (!message || message.test(err.message));

describe('GitHub pull requests (nock)', () => {
  before(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  after(() => nock.enableNetConnect());

  const calls = { count: 0 };
  const forge = () => new GithubForge(repo, tokenAuth('github', 'ghp_token'), calls);
  const gh = () =>
    nock(API)
      .matchHeader('authorization', 'Bearer ghp_token')
      .matchHeader('accept', 'application/vnd.github+json')
      .matchHeader('x-github-api-version', '2022-11-28');

  it('finds the open pull request of the head branch, following Link pages', async () => {
    const query = { state: 'open', head: 'acme:patchline/updates', base: 'main', per_page: '100' };
    const scope = gh()
      .get('/repos/acme/deploy/pulls')
      .query(query)
      .reply(200, [pull(3, { head: { ref: 'other', sha: 'x' } })], {
        link: `<${API}/repos/acme/deploy/pulls?state=open&head=acme%3Apatchline%2Fupdates&base=main&per_page=100&page=2>; rel="next", <${API}/repos/acme/deploy/pulls?page=2>; rel="last"`,
      })
      .get('/repos/acme/deploy/pulls')
      .query({ ...query, page: '2' })
      .reply(200, [pull(7)]);
    calls.count = 0;
    const found = await forge().findOpen('patchline/updates', 'main');
    assert.equal(found?.number, 7);
    assert.equal(found?.state, 'open');
    assert.equal(found?.url, 'https://github.com/acme/deploy/pull/7');
    assert.equal(calls.count, 2);
    scope.done();
  });

  it('finds nothing when no pull request is open', async () => {
    const scope = gh()
      .get('/repos/acme/deploy/pulls')
      .query({ state: 'open', head: 'acme:patchline/updates', base: 'main', per_page: '100' })
      .reply(200, []);
    assert.equal(await forge().findOpen('patchline/updates', 'main'), undefined);
    scope.done();
  });

  it('refuses to follow a pagination link to another host (the token would go with it)', async () => {
    gh()
      .get('/repos/acme/deploy/pulls')
      .query({ state: 'open', head: 'acme:patchline/updates', base: 'main', per_page: '100' })
      .reply(200, [], { link: '<https://evil.example/steal?page=2>; rel="next"' });
    await assert.rejects(forge().findOpen('patchline/updates', 'main'), failsWith('rejected', /another host/));
  });

  it('opens a pull request, then sets labels and asks users and teams to review', async () => {
    const scope = gh()
      .post('/repos/acme/deploy/pulls', {
        title: draft.title,
        head: 'patchline/updates',
        base: 'main',
        body: '## Evidence',
        draft: false,
        maintainer_can_modify: false,
      })
      .reply(201, pull(12))
      .post('/repos/acme/deploy/issues/12/labels', { labels: ['patchline', 'security'] })
      .reply(200, [{ name: 'patchline' }, { name: 'security' }])
      .post('/repos/acme/deploy/pulls/12/requested_reviewers', { reviewers: ['alice'], team_reviewers: ['platform'] })
      .reply(201, pull(12));
    const out = await forge().create(draft);
    assert.deepEqual(
      { number: out.pullRequest.number, created: out.created, warnings: out.warnings },
      { number: 12, created: true, warnings: [] },
    );
    scope.done();
  });

  it('keeps the pull request when labels or reviewers are refused, and says so', async () => {
    const scope = gh()
      .post('/repos/acme/deploy/pulls')
      .reply(201, pull(13))
      .post('/repos/acme/deploy/issues/13/labels')
      .reply(403, { message: 'Resource not accessible by integration' })
      .post('/repos/acme/deploy/pulls/13/requested_reviewers')
      .reply(422, { message: 'Reviews may only be requested from collaborators.' });
    const out = await forge().create(draft);
    assert.equal(out.pullRequest.number, 13);
    assert.match(out.warnings[0] ?? '', /labels not set \(.*HTTP 403.*Resource not accessible/);
    assert.match(out.warnings[1] ?? '', /reviewers not requested \(HTTP 422: Reviews may only be requested/);
    scope.done();
  });

  it('finds the existing pull request when GitHub says one already exists (422)', async () => {
    const scope = gh()
      .post('/repos/acme/deploy/pulls')
      .reply(422, {
        message: 'Validation Failed',
        errors: [
          {
            resource: 'PullRequest',
            code: 'custom',
            message: 'A pull request already exists for acme:patchline/updates.',
          },
        ],
        documentation_url: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
      })
      .get('/repos/acme/deploy/pulls')
      .query({ state: 'open', head: 'acme:patchline/updates', base: 'main', per_page: '100' })
      .reply(200, [pull(9)]);
    const out = await forge().create(draft);
    assert.deepEqual({ number: out.pullRequest.number, created: out.created }, { number: 9, created: false });
    scope.done();
  });

  it('reports any other 422 with what GitHub said', async () => {
    gh()
      .post('/repos/acme/deploy/pulls')
      .reply(422, {
        message: 'Validation Failed',
        errors: [{ resource: 'PullRequest', code: 'custom', message: 'No commits between main and patchline/updates' }],
      });
    await assert.rejects(forge().create(draft), failsWith('rejected', /HTTP 422.*No commits between main/));
  });

  it('says the credentials were refused (401, 403) and the repository is unknown (404)', async () => {
    const q = { state: 'open', head: 'acme:patchline/updates', base: 'main', per_page: '100' };
    gh().get('/repos/acme/deploy/pulls').query(q).reply(401, { message: 'Bad credentials' });
    await assert.rejects(
      forge().findOpen('patchline/updates', 'main'),
      failsWith('rejected', /HTTP 401.*Bad credentials/),
    );
    gh().get('/repos/acme/deploy/pulls').query(q).reply(403, { message: 'Must have admin rights to Repository.' });
    await assert.rejects(forge().findOpen('patchline/updates', 'main'), failsWith('rejected', /HTTP 403/));
    gh().get('/repos/acme/deploy/pulls').query(q).reply(404, { message: 'Not Found' });
    await assert.rejects(
      forge().findOpen('patchline/updates', 'main'),
      failsWith('rejected', /no repository acme\/deploy/),
    );
  });

  it('treats a secondary rate limit (403 with retry-after) as throttling, with the wait asked for', async () => {
    gh()
      .post('/repos/acme/deploy/pulls')
      .reply(
        403,
        { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
        { 'retry-after': '60' },
      );
    await assert.rejects(
      forge().create(draft),
      (err: unknown) => failsWith('throttled')(err) && (err as ServiceError).retryAfterMs === 60_000,
    );
  });

  it('treats an exhausted primary rate limit (403, x-ratelimit-remaining 0) as throttling until the reset', async () => {
    const reset = Math.floor(Date.now() / 1000) + 120;
    gh()
      .get('/repos/acme/deploy/pulls/4')
      .reply(
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
      );
    await assert.rejects(
      forge().get(4),
      (err: unknown) => failsWith('throttled')(err) && ((err as ServiceError).retryAfterMs ?? 0) > 100_000,
    );
  });

  it('updates the title and body', async () => {
    const scope = gh()
      .patch('/repos/acme/deploy/pulls/12', { title: 'new title', body: 'new body' })
      .reply(200, pull(12, { title: 'new title', body: 'new body' }));
    const pr = await forge().update(12, { title: 'new title', body: 'new body' });
    assert.equal(pr.title, 'new title');
    scope.done();
  });

  it('reads the state: merged (with its merge commit), closed without merging, gone', async () => {
    gh()
      .get('/repos/acme/deploy/pulls/12')
      .reply(
        200,
        pull(12, {
          state: 'closed',
          merged_at: '2026-12-06T03:00:00Z',
          merge_commit_sha: 'm'.repeat(40),
          closed_at: '2026-12-06T03:00:00Z',
        }),
      );
    const merged = await forge().get(12);
    assert.deepEqual(
      { state: merged.state, commit: merged.mergeCommit, at: merged.mergedAt },
      { state: 'merged', commit: 'm'.repeat(40), at: '2026-12-06T03:00:00Z' },
    );
    gh()
      .get('/repos/acme/deploy/pulls/13')
      .reply(200, pull(13, { state: 'closed', closed_at: '2026-12-06T03:00:00Z' }));
    const closed = await forge().get(13);
    assert.equal(closed.state, 'closed');
    assert.equal(closed.mergeCommit, undefined, 'the test merge commit of an unmerged pull request is not a merge');
    gh().get('/repos/acme/deploy/pulls/14').reply(404, { message: 'Not Found' });
    await assert.rejects(forge().get(14), failsWith('rejected', /no pull request #14/));
  });

  it('says a network failure or a 5xx may be retried', async () => {
    gh().get('/repos/acme/deploy/pulls/12').reply(502, 'Bad Gateway');
    await assert.rejects(forge().get(12), failsWith('unavailable', /HTTP 502/));
    gh().get('/repos/acme/deploy/pulls/12').replyWithError('ECONNRESET');
    await assert.rejects(forge().get(12), failsWith('unavailable', /unreachable/));
  });
});

describe('GitHub App authentication (nock)', () => {
  before(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  after(() => nock.enableNetConnect());

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

  /** Checks a JWT the way GitHub does: RS256 over header.claims with the App's public key. */
  function verifiedClaims(
    authorization: string | null | undefined,
  ): { iat: number; exp: number; iss: string } | undefined {
    const jwt = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    const [head, claims, signature] = (jwt ?? '').split('.');
    if (!head || !claims || !signature) return undefined;
    if ((JSON.parse(Buffer.from(head, 'base64url').toString()) as { alg?: string }).alg !== 'RS256') return undefined;
    const ok = verify('RSA-SHA256', Buffer.from(`${head}.${claims}`), publicKey, Buffer.from(signature, 'base64url'));
    return ok
      ? (JSON.parse(Buffer.from(claims, 'base64url').toString()) as { iat: number; exp: number; iss: string })
      : undefined;
  }

  function app(now: () => number, installationId?: string) {
    return new GithubAppAuth(
      {
        appId: '123456',
        privateKey: pem,
        api: API,
        owner: 'acme',
        repository: 'deploy',
        ...(installationId ? { installationId } : {}),
      },
      { now },
    );
  }

  it('signs a JWT GitHub accepts: RS256, iat 60 s back, exp under 10 minutes, iss the App id', () => {
    const now = Date.parse('2026-12-06T04:00:00Z');
    const claims = verifiedClaims(`Bearer ${app(() => now).jwt()}`);
    assert.deepEqual(claims, { iat: now / 1000 - 60, exp: now / 1000 + 540, iss: '123456' });
  });

  it('trades the JWT for an installation token, keeps it, and renews it five minutes before it expires', async () => {
    let now = Date.parse('2026-12-06T04:00:00Z');
    const tokenRequests: number[] = [];
    const scope = nock(API)
      .post('/app/installations/42/access_tokens')
      .times(2)
      // GitHub's check of the JWT: RS256 with the App's key, issued by the App.
      .matchHeader('authorization', (v) => verifiedClaims(v)?.iss === '123456')
      .reply(() => {
        tokenRequests.push(now);
        return [
          201,
          {
            token: `ghs_${tokenRequests.length}`,
            expires_at: new Date(now + 3_600_000).toISOString(),
            permissions: { pull_requests: 'write', contents: 'write' },
            repository_selection: 'selected',
          },
        ];
      });
    const auth = app(() => now, '42');
    assert.equal(await auth.token(), 'ghs_1');
    now += 50 * 60_000;
    assert.equal(await auth.token(), 'ghs_1', 'still 10 minutes left: kept');
    now += 6 * 60_000;
    assert.equal(await auth.token(), 'ghs_2', '4 minutes left: renewed');
    assert.equal(tokenRequests.length, 2);
    scope.done();
  });

  it('shares one renewal between concurrent callers', async () => {
    const scope = nock(API)
      .post('/app/installations/42/access_tokens')
      .once()
      .reply(201, { token: 'ghs_once', expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    const auth = app(Date.now, '42');
    assert.deepEqual(await Promise.all([auth.token(), auth.token(), auth.token()]), [
      'ghs_once',
      'ghs_once',
      'ghs_once',
    ]);
    scope.done();
  });

  it('finds the installation from the repository when its id is not given', async () => {
    const scope = nock(API)
      .get('/repos/acme/deploy/installation')
      .matchHeader('authorization', (v) => verifiedClaims(v)?.iss === '123456')
      .reply(200, { id: 77, account: { login: 'acme' } })
      .post('/app/installations/77/access_tokens')
      .reply(201, { token: 'ghs_77', expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal(await app(Date.now).token(), 'ghs_77');
    scope.done();
  });

  it('renews an installation token GitHub says expired (401) and repeats the call once', async () => {
    let issued = 0;
    const scope = nock(API)
      .post('/app/installations/42/access_tokens')
      .times(2)
      .reply(() => {
        issued++;
        // The first token claims an hour but GitHub already considers it expired (revoked, skewed clock).
        return [201, { token: `ghs_${issued}`, expires_at: new Date(Date.now() + 3_600_000).toISOString() }];
      })
      .get('/repos/acme/deploy/pulls/5')
      .matchHeader('authorization', 'Bearer ghs_1')
      .reply(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' })
      .get('/repos/acme/deploy/pulls/5')
      .matchHeader('authorization', 'Bearer ghs_2')
      .reply(200, pull(5));
    const pr = await new GithubForge(repo, app(Date.now, '42')).get(5);
    assert.equal(pr.number, 5);
    assert.equal(issued, 2);
    scope.done();
  });

  it('says so when GitHub refuses the JWT (a wrong key or App id)', async () => {
    nock(API)
      .post('/app/installations/42/access_tokens')
      .reply(401, { message: 'A JSON web token could not be decoded' });
    await assert.rejects(app(Date.now, '42').token(), failsWith('rejected', /refused the App's JWT/));
  });

  it('refuses a private key that is not PEM before any call', () => {
    assert.throws(
      () => new GithubAppAuth({ appId: '1', privateKey: 'not a key', api: API, owner: 'acme', repository: 'deploy' }),
      failsWith('rejected', /not a PEM private key/),
    );
  });
});
