// Azure DevOps Repos pull requests, REST API 7.1.
//
//   find    GET   {org}/{project}/_apis/git/repositories/{repo}/pullrequests
//                 ?searchCriteria.sourceRefName=refs/heads/<head>&searchCriteria.targetRefName=refs/heads/<base>
//                 &searchCriteria.status=active&$top=100&$skip=<n>&api-version=7.1  → {value, count}
//   create  POST  …/pullrequests?api-version=7.1 {sourceRefName, targetRefName, title, description,
//                 isDraft, labels [{name}], reviewers [{id}]}
//           409 TF401179 "An active pull request for the source and target branch already exists" → found again
//   update  PATCH …/pullrequests/{id}?api-version=7.1 {title, description}
//   state   GET   …/pullrequests/{id}?api-version=7.1: status active|abandoned|completed,
//                 lastMergeCommit.commitId
// Reviewers are identity ids (GUIDs). Descriptions are limited to 4000 characters by the service.
import { ServiceError } from '../../runtime/json-call.ts';
import { ForgeHttp, MAX_PAGES, refused, said } from './client.ts';
import type { Created, Forge, ForgeAuth, ForgeCalls, PullRequest, PullRequestDraft } from './types.ts';

export interface AzureRepository {
  /** https://dev.azure.com/{organization}/{project} */
  api: string;
  repository: string;
}

const VERSION = '7.1';
const PAGE = 100;
export const AZURE_DESCRIPTION_LIMIT = 4000;

export class AzureReposForge implements Forge {
  readonly provider = 'azure' as const;
  private readonly http: ForgeHttp;
  private readonly repo: AzureRepository;

  constructor(repo: AzureRepository, auth: ForgeAuth, calls?: ForgeCalls) {
    this.repo = repo;
    this.http = new ForgeHttp({ api: repo.api, auth, service: 'Azure DevOps', ...(calls ? { calls } : {}) });
  }

  private path(rest: string, query: Record<string, string> = {}): string {
    const q = new URLSearchParams({ ...query, 'api-version': VERSION });
    return `/_apis/git/repositories/${encodeURIComponent(this.repo.repository)}/pullrequests${rest}?${q.toString()}`;
  }

  async findOpen(head: string, base: string, signal?: AbortSignal): Promise<PullRequest | undefined> {
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await this.http.call(
        'GET',
        this.path('', {
          'searchCriteria.sourceRefName': `refs/heads/${head}`,
          'searchCriteria.targetRefName': `refs/heads/${base}`,
          'searchCriteria.status': 'active',
          $top: String(PAGE),
          $skip: String(page * PAGE),
        }),
        undefined,
        signal,
      );
      if (res.status === 404) throw notFound(this.repo);
      const value = (res.body as { value?: unknown } | undefined)?.value;
      if (res.status !== 200 || !Array.isArray(value)) throw refused('Azure DevOps', 'list pull requests', res);
      const mine: unknown = (value as unknown[]).find((p) => {
        const r = p as Record<string, unknown>;
        return r.sourceRefName === `refs/heads/${head}` && r.targetRefName === `refs/heads/${base}`;
      });
      if (mine) return this.toPullRequest(mine);
      if (value.length < PAGE) return undefined;
    }
    return undefined;
  }

  async create(draft: PullRequestDraft, signal?: AbortSignal): Promise<Created> {
    const res = await this.http.call(
      'POST',
      this.path(''),
      {
        sourceRefName: `refs/heads/${draft.head}`,
        targetRefName: `refs/heads/${draft.base}`,
        title: draft.title,
        description: draft.body.slice(0, AZURE_DESCRIPTION_LIMIT),
        isDraft: draft.draft,
        ...(draft.labels.length > 0 ? { labels: draft.labels.map((name) => ({ name })) } : {}),
        ...(draft.reviewers.length > 0 ? { reviewers: draft.reviewers.map((id) => ({ id })) } : {}),
      },
      signal,
    );
    if (res.status === 409 || /TF401179/.test(said(res.body))) {
      const existing = await this.findOpen(draft.head, draft.base, signal);
      if (existing) return { pullRequest: existing, created: false, warnings: [] };
    }
    if (res.status === 404) throw notFound(this.repo);
    if (res.status !== 201 && res.status !== 200)
      throw refused('Azure DevOps', `open a pull request from ${draft.head} into ${draft.base}`, res);
    return { pullRequest: this.toPullRequest(res.body), created: true, warnings: [] };
  }

  async update(number: number, content: { title: string; body: string }, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call(
      'PATCH',
      this.path(`/${number}`),
      { title: content.title, description: content.body.slice(0, AZURE_DESCRIPTION_LIMIT) },
      signal,
    );
    if (res.status !== 200) throw refused('Azure DevOps', `update pull request ${number}`, res);
    return this.toPullRequest(res.body);
  }

  async get(number: number, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call('GET', this.path(`/${number}`), undefined, signal);
    if (res.status === 404)
      throw new ServiceError('rejected', `Azure DevOps has no pull request ${number} in ${this.repo.repository}`, {
        status: 404,
      });
    if (res.status !== 200) throw refused('Azure DevOps', `read pull request ${number}`, res);
    return this.toPullRequest(res.body);
  }

  private toPullRequest(raw: unknown): PullRequest {
    const p = (raw ?? {}) as Record<string, unknown>;
    const state = p.status === 'completed' ? 'merged' : p.status === 'active' ? 'open' : 'closed';
    const repository = (p.repository ?? {}) as Record<string, unknown>;
    const web =
      typeof repository.webUrl === 'string' ? repository.webUrl : `${this.repo.api}/_git/${this.repo.repository}`;
    const merge = ((p.lastMergeCommit ?? {}) as Record<string, unknown>).commitId;
    const source = ((p.lastMergeSourceCommit ?? {}) as Record<string, unknown>).commitId;
    const id = Number(p.pullRequestId);
    return {
      number: id,
      url: `${web}/pullrequest/${id}`,
      state,
      title: typeof p.title === 'string' ? p.title : '',
      body: typeof p.description === 'string' ? p.description : '',
      ...(typeof source === 'string' ? { headSha: source } : {}),
      ...(state === 'merged' && typeof merge === 'string' ? { mergeCommit: merge } : {}),
      ...(state === 'merged' && typeof p.closedDate === 'string' ? { mergedAt: p.closedDate } : {}),
      ...(typeof p.closedDate === 'string' ? { closedAt: p.closedDate } : {}),
    };
  }
}

function notFound(repo: AzureRepository): ServiceError {
  return new ServiceError(
    'rejected',
    `Azure DevOps has no repository ${repo.repository} under ${repo.api} that these credentials can see (HTTP 404)`,
    { status: 404 },
  );
}
