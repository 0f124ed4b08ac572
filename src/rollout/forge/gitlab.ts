// GitLab merge requests, REST API v4 (gitlab.com and self-managed).
//
//   find    GET  /projects/{id}/merge_requests?state=opened&source_branch=&target_branch=&per_page=100
//                (pages by the x-next-page header)
//   create  POST /projects/{id}/merge_requests {source_branch, target_branch, title, description,
//                labels (comma list), reviewer_ids, remove_source_branch}
//           409 "Another open merge request already exists for this source branch" → found again
//   update  PUT  /projects/{id}/merge_requests/{iid} {title, description}
//   state   GET  /projects/{id}/merge_requests/{iid}: opened|closed|locked|merged, merge_commit_sha
//                (squash_commit_sha when squashed)
// The project id is the URL-encoded path (group%2Fsub%2Frepo); reviewers are user names,
// turned into ids by GET /users?username=. A draft is a title starting "Draft: ".
import { header } from '../../runtime/http.ts';
import { ServiceError } from '../../runtime/json-call.ts';
import { ForgeHttp, MAX_PAGES, refused } from './client.ts';
import type { Created, Forge, ForgeAuth, ForgeCalls, PullRequest, PullRequestDraft } from './types.ts';

export interface GitlabProject {
  /** group/sub/repo */
  path: string;
  /** https://<host>/api/v4 */
  api: string;
}

export class GitlabForge implements Forge {
  readonly provider = 'gitlab' as const;
  private readonly http: ForgeHttp;
  private readonly project: GitlabProject;

  constructor(project: GitlabProject, auth: ForgeAuth, calls?: ForgeCalls) {
    this.project = project;
    this.http = new ForgeHttp({ api: project.api, auth, service: 'GitLab', ...(calls ? { calls } : {}) });
  }

  private path(rest: string): string {
    return `/projects/${encodeURIComponent(this.project.path)}${rest}`;
  }

  async findOpen(head: string, base: string, signal?: AbortSignal): Promise<PullRequest | undefined> {
    for (let page = 1; page <= MAX_PAGES;) {
      const query = new URLSearchParams({
        state: 'opened',
        source_branch: head,
        target_branch: base,
        per_page: '100',
        page: String(page),
      });
      const res = await this.http.call('GET', this.path(`/merge_requests?${query.toString()}`), undefined, signal);
      if (res.status === 404) throw notFound(this.project);
      if (res.status !== 200 || !Array.isArray(res.body)) throw refused('GitLab', 'list merge requests', res);
      const mine: unknown = (res.body as unknown[]).find((m) => {
        const r = m as Record<string, unknown>;
        return r.source_branch === head && r.target_branch === base;
      });
      if (mine) return toPullRequest(mine);
      const next = Number(header(res.headers, 'x-next-page') ?? '');
      if (!Number.isInteger(next) || next <= page) return undefined;
      page = next;
    }
    return undefined;
  }

  async create(draft: PullRequestDraft, signal?: AbortSignal): Promise<Created> {
    const warnings: string[] = [];
    const reviewerIds: number[] = [];
    for (const name of draft.reviewers) {
      const id = await this.userId(name, signal);
      if (id === undefined) warnings.push(`reviewer ${name} not found`);
      else reviewerIds.push(id);
    }
    const res = await this.http.call(
      'POST',
      this.path('/merge_requests'),
      {
        source_branch: draft.head,
        target_branch: draft.base,
        title: draft.draft && !/^draft:/i.test(draft.title) ? `Draft: ${draft.title}` : draft.title,
        description: draft.body,
        ...(draft.labels.length > 0 ? { labels: draft.labels.join(',') } : {}),
        ...(reviewerIds.length > 0 ? { reviewer_ids: reviewerIds } : {}),
        remove_source_branch: false,
      },
      signal,
    );
    if (res.status === 409) {
      const existing = await this.findOpen(draft.head, draft.base, signal);
      if (existing) return { pullRequest: existing, created: false, warnings: [] };
    }
    if (res.status === 404) throw notFound(this.project);
    if (res.status !== 201) throw refused('GitLab', `open a merge request from ${draft.head} into ${draft.base}`, res);
    return { pullRequest: toPullRequest(res.body), created: true, warnings };
  }

  private async userId(username: string, signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.http.call(
      'GET',
      `/users?${new URLSearchParams({ username }).toString()}`,
      undefined,
      signal,
    );
    if (res.status !== 200 || !Array.isArray(res.body)) return undefined;
    const id = (res.body[0] as { id?: unknown } | undefined)?.id;
    return typeof id === 'number' ? id : undefined;
  }

  async update(number: number, content: { title: string; body: string }, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call(
      'PUT',
      this.path(`/merge_requests/${number}`),
      { title: content.title, description: content.body },
      signal,
    );
    if (res.status !== 200) throw refused('GitLab', `update merge request !${number}`, res);
    return toPullRequest(res.body);
  }

  async get(number: number, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call('GET', this.path(`/merge_requests/${number}`), undefined, signal);
    if (res.status === 404)
      throw new ServiceError('rejected', `GitLab has no merge request !${number} in ${this.project.path}`, {
        status: 404,
      });
    if (res.status !== 200) throw refused('GitLab', `read merge request !${number}`, res);
    return toPullRequest(res.body);
  }
}

function notFound(project: GitlabProject): ServiceError {
  return new ServiceError(
    'rejected',
    `GitLab has no project ${project.path} that these credentials can see (HTTP 404); check the project path and the token's scopes (api)`,
    { status: 404 },
  );
}

function toPullRequest(raw: unknown): PullRequest {
  const m = (raw ?? {}) as Record<string, unknown>;
  const state = m.state === 'merged' ? 'merged' : m.state === 'opened' ? 'open' : 'closed';
  const commit =
    (typeof m.merge_commit_sha === 'string' && m.merge_commit_sha) ||
    (typeof m.squash_commit_sha === 'string' && m.squash_commit_sha) ||
    undefined;
  return {
    number: Number(m.iid),
    url: typeof m.web_url === 'string' ? m.web_url : '',
    state,
    title: typeof m.title === 'string' ? m.title : '',
    body: typeof m.description === 'string' ? m.description : '',
    ...(typeof m.sha === 'string' ? { headSha: m.sha } : {}),
    ...(state === 'merged' && commit ? { mergeCommit: commit } : {}),
    ...(state === 'merged' && typeof m.merged_at === 'string' ? { mergedAt: m.merged_at } : {}),
    ...(typeof m.closed_at === 'string' ? { closedAt: m.closed_at } : {}),
  };
}
