// Gitea and Forgejo pull requests, API v1: GitHub-like, with differences that matter here.
//
//   find    GET   /repos/{o}/{r}/pulls/{base}/{head}: the open (unmerged, unclosed) one, 404 if none
//   create  POST  /repos/{o}/{r}/pulls {head, base, title, body, labels (ids)}
//           409 "pull request already exists for these targets" → found again
//   labels  GET   /repos/{o}/{r}/labels?page=&limit=50 (names → ids)
//   review  POST  /repos/{o}/{r}/pulls/{n}/requested_reviewers {reviewers}
//   update  PATCH /repos/{o}/{r}/pulls/{n} {title, body}
//   state   GET   /repos/{o}/{r}/pulls/{n}: state open|closed, merged, merge_commit_sha
// Authorization: token <t>. A draft is a title starting "WIP: " (Gitea's work-in-progress prefix).
import { ServiceError } from '../../runtime/json-call.ts';
import { ForgeHttp, MAX_PAGES, refused, said } from './client.ts';
import type { Created, Forge, ForgeAuth, ForgeCalls, PullRequest, PullRequestDraft } from './types.ts';

export interface GiteaRepository {
  owner: string;
  name: string;
  /** https://<host>/api/v1 */
  api: string;
}

const LABEL_PAGE = 50;

export class GiteaForge implements Forge {
  readonly provider = 'gitea' as const;
  private readonly http: ForgeHttp;
  private readonly repo: GiteaRepository;

  constructor(repo: GiteaRepository, auth: ForgeAuth, calls?: ForgeCalls) {
    this.repo = repo;
    this.http = new ForgeHttp({ api: repo.api, auth, service: 'Gitea', ...(calls ? { calls } : {}) });
  }

  private path(rest: string): string {
    return `/repos/${encodeURIComponent(this.repo.owner)}/${encodeURIComponent(this.repo.name)}${rest}`;
  }

  async findOpen(head: string, base: string, signal?: AbortSignal): Promise<PullRequest | undefined> {
    const res = await this.http.call(
      'GET',
      this.path(`/pulls/${encodeURIComponent(base)}/${encodeURIComponent(head)}`),
      undefined,
      signal,
    );
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw refused('Gitea', 'find the pull request', res);
    const pr = toPullRequest(res.body);
    return pr.state === 'open' ? pr : undefined;
  }

  async create(draft: PullRequestDraft, signal?: AbortSignal): Promise<Created> {
    const warnings: string[] = [];
    const labels = draft.labels.length > 0 ? await this.labelIds(draft.labels, warnings, signal) : [];
    const res = await this.http.call(
      'POST',
      this.path('/pulls'),
      {
        head: draft.head,
        base: draft.base,
        title: draft.draft && !/^wip:/i.test(draft.title) ? `WIP: ${draft.title}` : draft.title,
        body: draft.body,
        ...(labels.length > 0 ? { labels } : {}),
      },
      signal,
    );
    if (res.status === 409) {
      const existing = await this.findOpen(draft.head, draft.base, signal);
      if (existing) return { pullRequest: existing, created: false, warnings: [] };
    }
    if (res.status === 404) throw notFound(this.repo);
    if (res.status !== 201) throw refused('Gitea', `open a pull request from ${draft.head} into ${draft.base}`, res);
    const pullRequest = toPullRequest(res.body);
    if (draft.reviewers.length > 0) {
      const r = await this.http.call(
        'POST',
        this.path(`/pulls/${pullRequest.number}/requested_reviewers`),
        { reviewers: draft.reviewers },
        signal,
      );
      if (r.status !== 201) warnings.push(`reviewers not requested (HTTP ${r.status})${said(r.body)}`);
    }
    return { pullRequest, created: true, warnings };
  }

  /** Gitea takes label ids: the repository's labels, read a page at a time. */
  private async labelIds(names: readonly string[], warnings: string[], signal?: AbortSignal): Promise<number[]> {
    const wanted = new Map<string, number | undefined>(names.map((n) => [n, undefined]));
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await this.http.call('GET', this.path(`/labels?page=${page}&limit=${LABEL_PAGE}`), undefined, signal);
      if (res.status !== 200 || !Array.isArray(res.body)) {
        warnings.push(`labels not read (HTTP ${res.status})${said(res.body)}`);
        return [];
      }
      for (const l of res.body as { id?: unknown; name?: unknown }[])
        if (typeof l.name === 'string' && wanted.has(l.name) && typeof l.id === 'number') wanted.set(l.name, l.id);
      if (res.body.length < LABEL_PAGE) break;
    }
    const missing = [...wanted].filter(([, id]) => id === undefined).map(([n]) => n);
    if (missing.length > 0) warnings.push(`labels not found in the repository: ${missing.join(', ')}`);
    return [...wanted.values()].filter((id): id is number => id !== undefined);
  }

  async update(number: number, content: { title: string; body: string }, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call('PATCH', this.path(`/pulls/${number}`), content, signal);
    if (res.status !== 201 && res.status !== 200) throw refused('Gitea', `update pull request #${number}`, res);
    return toPullRequest(res.body);
  }

  async get(number: number, signal?: AbortSignal): Promise<PullRequest> {
    const res = await this.http.call('GET', this.path(`/pulls/${number}`), undefined, signal);
    if (res.status === 404)
      throw new ServiceError(
        'rejected',
        `Gitea has no pull request #${number} in ${this.repo.owner}/${this.repo.name}`,
        {
          status: 404,
        },
      );
    if (res.status !== 200) throw refused('Gitea', `read pull request #${number}`, res);
    return toPullRequest(res.body);
  }
}

function notFound(repo: GiteaRepository): ServiceError {
  return new ServiceError(
    'rejected',
    `Gitea has no repository ${repo.owner}/${repo.name} that these credentials can see (HTTP 404)`,
    { status: 404 },
  );
}

function toPullRequest(raw: unknown): PullRequest {
  const p = (raw ?? {}) as Record<string, unknown>;
  const head = (p.head ?? {}) as Record<string, unknown>;
  const merged = p.merged === true;
  return {
    number: Number(p.number),
    url: typeof p.html_url === 'string' ? p.html_url : '',
    state: merged ? 'merged' : p.state === 'open' ? 'open' : 'closed',
    title: typeof p.title === 'string' ? p.title : '',
    body: typeof p.body === 'string' ? p.body : '',
    ...(typeof head.sha === 'string' ? { headSha: head.sha } : {}),
    ...(merged && typeof p.merge_commit_sha === 'string' ? { mergeCommit: p.merge_commit_sha } : {}),
    ...(merged && typeof p.merged_at === 'string' ? { mergedAt: p.merged_at } : {}),
    ...(typeof p.closed_at === 'string' ? { closedAt: p.closed_at } : {}),
  };
}
