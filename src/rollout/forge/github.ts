// GitHub (and GitHub Enterprise Server) pull requests, REST API version 2022-11-28.
//
//   find    GET   /repos/{o}/{r}/pulls?state=open&head={o}:{branch}&base={base}&per_page=100 (Link pages)
//   create  POST  /repos/{o}/{r}/pulls {title, head, base, body, draft, maintainer_can_modify}
//           422 "A pull request already exists for …" → found again
//   labels  POST  /repos/{o}/{r}/issues/{n}/labels {labels}
//   review  POST  /repos/{o}/{r}/pulls/{n}/requested_reviewers {reviewers, team_reviewers}
//   update  PATCH /repos/{o}/{r}/pulls/{n} {title, body}
//   state   GET   /repos/{o}/{r}/pulls/{n}: state open|closed, merged_at, merge_commit_sha
// Labels and reviewers are separate calls after the create: their failure is reported (a
// reviewer without access is common) but keeps the pull request, which is what matters.
import { ServiceError } from '../../runtime/json-call.ts';
import { ForgeHttp, MAX_PAGES, nextLink, refused, said } from './client.ts';
import type { Created, Forge, ForgeAuth, ForgeCalls, PullRequest, PullRequestDraft } from './types.ts';

export interface GithubRepository {
  owner: string;
  name: string;
  /** https://api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server. */
  api: string;
}

const HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };

export class GithubForge implements Forge {
  readonly provider = 'github' as const;
  private readonly http: ForgeHttp;
  private readonly repo: GithubRepository;

  constructor(repo: GithubRepository, auth: ForgeAuth, calls?: ForgeCalls) {
    this.repo = repo;
    this.http = new ForgeHttp({
      api: repo.api,
      auth,
      headers: HEADERS,
      service: 'GitHub',
      ...(calls ? { calls } : {}),
    });
  }

  private path(rest: string): string {
    return `/repos/${encodeURIComponent(this.repo.owner)}/${encodeURIComponent(this.repo.name)}${rest}`;
  }

  async findOpen(head: string, base: string, signal?: AbortSignal): Promise<PullRequest | undefined> {
    const query = new URLSearchParams({ state: 'open', head: `${this.repo.owner}:${head}`, base, per_page: '100' });
    let next: string | undefined = this.path(`/pulls?${query.toString()}`);
    for (let page = 0; next && page < MAX_PAGES; page++) {
      const res = await this.http.call('GET', next, undefined, signal);
      if (res.status === 404) throw notFound(this.repo);
      if (res.status !== 200 || !Array.isArray(res.body)) throw refused('GitHub', 'list pull requests', res);
      const mine = res.body.map(toPullRequest).find((p) => p.head === head && p.base === base);
      if (mine) return mine.pullRequest;
      next = nextLink(res.headers.link);
    }
    return undefined;
  }

  async create(draft: PullRequestDraft, signal?: AbortSignal): Promise<Created> {
    const res = await this.http.call(
      'POST',
      this.path('/pulls'),
      {
        title: draft.title,
        head: draft.head,
        base: draft.base,
        body: draft.body,
        draft: draft.draft,
        maintainer_can_modify: false,
      },
      signal,
    );
    if (res.status === 422 && /pull request already exists/i.test(said(res.body))) {
      const existing = await this.findOpen(draft.head, draft.base, signal);
      if (existing) return { pullRequest: existing, created: false, warnings: [] };
    }
    if (res.status === 404) throw notFound(this.repo);
    if (res.status !== 201) throw refused('GitHub', `open a pull request from ${draft.head} into ${draft.base}`, res);
    const pullRequest = toPullRequest(res.body).pullRequest;
    const warnings = await this.decorate(pullRequest.number, draft, signal);
    return { pullRequest, created: true, warnings };
  }

  /** Labels and reviewers: a refusal is a warning, not a failure (the pull request exists). */
  private async decorate(number: number, draft: PullRequestDraft, signal?: AbortSignal): Promise<string[]> {
    const warnings: string[] = [];
    if (draft.labels.length > 0) {
      const problem = await this.tryCall(this.path(`/issues/${number}/labels`), { labels: draft.labels }, 200, signal);
      if (problem) warnings.push(`labels not set (${problem})`);
    }
    if (draft.reviewers.length > 0) {
      const teams = draft.reviewers.filter((r) => r.includes('/')).map((r) => r.split('/').pop() ?? r);
      const users = draft.reviewers.filter((r) => !r.includes('/'));
      const body = { reviewers: users, team_reviewers: teams };
      const problem = await this.tryCall(this.path(`/pulls/${number}/requested_reviewers`), body, 201, signal);
      if (problem) warnings.push(`reviewers not requested (${problem})`);
    }
    return warnings;
  }

  /** A POST whose refusal is described, not thrown; throttling and outages still throw. */
  private async tryCall(path: string, body: unknown, ok: number, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const res = await this.http.call('POST', path, body, signal);
      return res.status === ok ? undefined : `HTTP ${res.status}${said(res.body)}`;
    } catch (err) {
      if (err instanceof ServiceError && err.kind === 'rejected') return err.message;
      throw err;
    }
  }

  async update(number: number, content: { title: string; body: string }, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call('PATCH', this.path(`/pulls/${number}`), content, signal);
    if (res.status !== 200) throw refused('GitHub', `update pull request #${number}`, res);
    return toPullRequest(res.body).pullRequest;
  }

  async get(number: number, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call('GET', this.path(`/pulls/${number}`), undefined, signal);
    if (res.status === 404)
      throw new ServiceError(
        'rejected',
        `GitHub has no pull request #${number} in ${this.repo.owner}/${this.repo.name}`,
        { status: 404 },
      );
    if (res.status !== 200) throw refused('GitHub', `read pull request #${number}`, res);
    return toPullRequest(res.body).pullRequest;
  }
}

function notFound(repo: GithubRepository): ServiceError {
  return new ServiceError(
    'rejected',
    `GitHub has no repository ${repo.owner}/${repo.name} that these credentials can see (HTTP 404); check the repository and the token's or the App installation's access`,
    { status: 404 },
  );
}

function toPullRequest(raw: unknown): { pullRequest: PullRequest; head: string; base: string } {
  const p = (raw ?? {}) as Record<string, unknown>;
  const head = (p.head ?? {}) as Record<string, unknown>;
  const base = (p.base ?? {}) as Record<string, unknown>;
  const merged = typeof p.merged_at === 'string' && p.merged_at !== '';
  const pullRequest: PullRequest = {
    number: Number(p.number),
    url: typeof p.html_url === 'string' ? p.html_url : '',
    state: merged ? 'merged' : p.state === 'open' ? 'open' : 'closed',
    title: typeof p.title === 'string' ? p.title : '',
    body: typeof p.body === 'string' ? p.body : '',
    ...(typeof head.sha === 'string' ? { headSha: head.sha } : {}),
    ...(merged && typeof p.merge_commit_sha === 'string' ? { mergeCommit: p.merge_commit_sha } : {}),
    ...(merged ? { mergedAt: p.merged_at as string } : {}),
    ...(typeof p.closed_at === 'string' ? { closedAt: p.closed_at } : {}),
  };
  return {
    pullRequest,
    head: typeof head.ref === 'string' ? head.ref : '',
    base: typeof base.ref === 'string' ? base.ref : '',
  };
}
