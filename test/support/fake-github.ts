// A GitHub-shaped forge on 127.0.0.1 for the pull request tests: the REST calls Patchline makes
// (list, create, update and read pull requests; labels; review requests; GitHub App
// installation tokens), answered from state kept here, over the real bare repositories of
// the test git server. A pull request is refused when its head branch does not exist (as
// GitHub does), merging runs `git merge` on the server's repository, and the answers carry
// GitHub's fields and errors (422 "A pull request already exists", secondary rate limits).
// The forge API itself cannot run here; the git side is real.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GitRepos } from './git-server.ts';

export interface FakePull {
  number: number;
  owner: string;
  repo: string;
  state: 'open' | 'closed';
  title: string;
  body: string;
  head: string;
  base: string;
  draft: boolean;
  labels: string[];
  reviewers: string[];
  merged_at: string | null;
  merge_commit_sha: string | null;
  closed_at: string | null;
}

export interface FakeGithubOptions {
  repos: GitRepos;
  /** Bearer tokens accepted; installation tokens issued are added (share it with the git server). */
  tokens: string[];
  /** A GitHub App whose JWTs are accepted at /app/installations/{id}/access_tokens. */
  app?: { id: string; installationId: number; publicKey: KeyObject | string; tokenTtlMs?: number };
  /** Items per page of the pull request list when the client asks for more (to exercise pagination). */
  pageSize?: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** The status and body answered, once answered. */
  status?: number;
  answer?: unknown;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

type Reply = { status: number; body: unknown; headers?: Record<string, string> };

export class FakeGithub {
  readonly requests: SeenRequest[] = [];
  readonly pulls: FakePull[] = [];
  private readonly options: FakeGithubOptions;
  private readonly server: Server;
  private readonly failures: Reply[] = [];
  private issued = 0;
  api = '';
  /** Called when a create request arrives, before it is answered (a test may kill the client then). */
  onCreate: (() => Promise<void> | void) | undefined;

  private constructor(options: FakeGithubOptions) {
    this.options = options;
    this.server = createServer((req, res) => this.receive(req, res));
  }

  static async start(options: FakeGithubOptions): Promise<FakeGithub> {
    const f = new FakeGithub(options);
    await new Promise<void>((resolve) => f.server.listen(0, '127.0.0.1', resolve));
    f.api = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
    return f;
  }

  /** The next request is answered with this instead (a rate limit, an outage). */
  failNext(reply: Reply): void {
    this.failures.push(reply);
  }

  /** Requests that reached the pull request API (not the App's token endpoint). */
  apiRequests(): SeenRequest[] {
    return this.requests.filter((r) => !r.path.startsWith('/app/'));
  }

  open(owner: string, repo: string): FakePull[] {
    return this.pulls.filter((p) => p.owner === owner && p.repo === repo && p.state === 'open');
  }

  /** Merges a pull request on the git server, as the merge button does; returns the merge commit. */
  async merge(number: number, how: 'merge' | 'squash' = 'merge'): Promise<string> {
    const pr = this.pull(number);
    const message =
      how === 'squash'
        ? `${pr.title} (#${pr.number})\n\n${pr.body}`
        : `Merge pull request #${pr.number} from ${pr.owner}/${pr.head}\n\n${pr.title}`;
    const sha = await this.options.repos.merge(`${pr.owner}/${pr.repo}`, pr.head, pr.base, message, how === 'squash');
    const now = new Date().toISOString();
    Object.assign(pr, { state: 'closed', merged_at: now, closed_at: now, merge_commit_sha: sha });
    return sha;
  }

  /** Closes a pull request without merging. */
  close(number: number): void {
    Object.assign(this.pull(number), { state: 'closed', closed_at: new Date().toISOString() });
  }

  private pull(number: number): FakePull {
    const pr = this.pulls.find((p) => p.number === number);
    if (!pr) throw new Error(`no pull request #${number}`);
    return pr;
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void this.answer(req, Buffer.concat(chunks).toString('utf8')).then(
        (reply) => {
          const seen = this.requests.at(-1);
          if (seen) Object.assign(seen, { status: reply.status, answer: reply.body });
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
          res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: String(err) }));
        },
      );
    });
  }

  private async answer(req: IncomingMessage, text: string): Promise<Reply> {
    const url = new URL(req.url ?? '/', this.api);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return { status: 400, body: { message: 'Problems parsing JSON' } };
    }
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
    });
    const failure = this.failures.shift();
    if (failure) return failure;
    const auth = req.headers.authorization ?? '';
    const app = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(url.pathname);
    if (app && req.method === 'POST') return this.installationToken(auth, Number(app[1]));
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    if (!token || !this.options.tokens.includes(token))
      return { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } };
    return this.route(req.method ?? 'GET', url, body);
  }

  private async route(method: string, url: URL, body: unknown): Promise<Reply> {
    const m = /^\/repos\/([^/]+)\/([^/]+)\/(pulls|issues)(?:\/(\d+))?(?:\/(labels|requested_reviewers))?$/.exec(
      url.pathname,
    );
    if (!m) return { status: 404, body: { message: 'Not Found' } };
    const [, owner, repo, kind, num, sub] = m as unknown as [
      string,
      string,
      string,
      string,
      string | undefined,
      string | undefined,
    ];
    if (!(await this.options.repos.branches(`${owner}/${repo}`).catch(() => undefined)))
      return { status: 404, body: { message: 'Not Found' } };
    const b = (body ?? {}) as Record<string, unknown>;
    if (kind === 'pulls' && !num && method === 'GET') return this.list(owner, repo, url);
    if (kind === 'pulls' && !num && method === 'POST') return this.create(owner, repo, b);
    const pr = this.pulls.find((p) => p.owner === owner && p.repo === repo && p.number === Number(num));
    if (!pr) return { status: 404, body: { message: 'Not Found' } };
    if (kind === 'issues' && sub === 'labels' && method === 'POST') {
      pr.labels.push(...((b.labels as string[] | undefined) ?? []));
      return { status: 200, body: pr.labels.map((name) => ({ name })) };
    }
    if (kind === 'pulls' && sub === 'requested_reviewers' && method === 'POST') {
      pr.reviewers.push(
        ...((b.reviewers as string[] | undefined) ?? []),
        ...((b.team_reviewers as string[] | undefined) ?? []),
      );
      return { status: 201, body: await this.shape(pr) };
    }
    if (kind === 'pulls' && !sub && method === 'PATCH') {
      if (typeof b.title === 'string') pr.title = b.title;
      if (typeof b.body === 'string') pr.body = b.body;
      return { status: 200, body: await this.shape(pr) };
    }
    if (kind === 'pulls' && !sub && method === 'GET') return { status: 200, body: await this.shape(pr) };
    return { status: 404, body: { message: 'Not Found' } };
  }

  private async list(owner: string, repo: string, url: URL): Promise<Reply> {
    const q = url.searchParams;
    const head = q.get('head');
    const matching = this.pulls.filter(
      (p) =>
        p.owner === owner &&
        p.repo === repo &&
        (q.get('state') === 'all' || p.state === (q.get('state') ?? 'open')) &&
        (!head || `${p.owner}:${p.head}` === head) &&
        (!q.get('base') || p.base === q.get('base')),
    );
    const perPage = Math.min(Number(q.get('per_page') ?? 30), this.options.pageSize ?? 100);
    const page = Number(q.get('page') ?? 1);
    const items = matching.slice((page - 1) * perPage, page * perPage);
    const headers: Record<string, string> = {};
    if (page * perPage < matching.length) {
      const next = new URL(url);
      next.searchParams.set('page', String(page + 1));
      headers.link = `<${next.toString()}>; rel="next"`;
    }
    return { status: 200, body: await Promise.all(items.map((p) => this.shape(p))), headers };
  }

  private async create(owner: string, repo: string, b: Record<string, unknown>): Promise<Reply> {
    await this.onCreate?.();
    const head = text(b.head);
    const base = text(b.base);
    const branches = await this.options.repos.branches(`${owner}/${repo}`);
    if (!branches.includes(head))
      return {
        status: 422,
        body: { message: 'Validation Failed', errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }] },
      };
    if (this.open(owner, repo).some((p) => p.head === head && p.base === base))
      return {
        status: 422,
        body: {
          message: 'Validation Failed',
          errors: [
            { resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${owner}:${head}.` },
          ],
        },
      };
    const pr: FakePull = {
      number: this.pulls.length + 1,
      owner,
      repo,
      state: 'open',
      title: text(b.title),
      body: text(b.body),
      head,
      base,
      draft: b.draft === true,
      labels: [],
      reviewers: [],
      merged_at: null,
      merge_commit_sha: null,
      closed_at: null,
    };
    this.pulls.push(pr);
    return { status: 201, body: await this.shape(pr) };
  }

  private async shape(p: FakePull): Promise<Record<string, unknown>> {
    const path = `${p.owner}/${p.repo}`;
    return {
      number: p.number,
      state: p.state,
      title: p.title,
      body: p.body,
      draft: p.draft,
      html_url: `${this.api}/${path}/pull/${p.number}`,
      head: { ref: p.head, sha: (await this.options.repos.head(path, p.head)) ?? null, label: `${p.owner}:${p.head}` },
      base: { ref: p.base, sha: (await this.options.repos.head(path, p.base)) ?? null },
      labels: p.labels.map((name) => ({ name })),
      requested_reviewers: p.reviewers.map((login) => ({ login })),
      merged_at: p.merged_at,
      merge_commit_sha: p.merge_commit_sha,
      closed_at: p.closed_at,
    };
  }

  /** The App's JWT checked as GitHub does (RS256, issued by the App, not expired), then a token. */
  private installationToken(auth: string, installation: number): Reply {
    const app = this.options.app;
    const jwt = /^Bearer (.+)$/.exec(auth)?.[1] ?? '';
    const [head, claims, signature] = jwt.split('.');
    const key = app ? (typeof app.publicKey === 'string' ? createPublicKey(app.publicKey) : app.publicKey) : undefined;
    const valid =
      key &&
      head &&
      claims &&
      signature &&
      verify('RSA-SHA256', Buffer.from(`${head}.${claims}`), key, Buffer.from(signature, 'base64url'));
    const c = valid ? (JSON.parse(Buffer.from(claims, 'base64url').toString()) as { iss?: string; exp?: number }) : {};
    if (!valid || c.iss !== app?.id || (c.exp ?? 0) * 1000 < Date.now())
      return { status: 401, body: { message: 'A JSON web token could not be decoded' } };
    if (installation !== app?.installationId) return { status: 404, body: { message: 'Not Found' } };
    const token = `ghs_fake${++this.issued}`;
    this.options.tokens.push(token);
    const expires = new Date(Date.now() + (app.tokenTtlMs ?? 3_600_000)).toISOString();
    return {
      status: 201,
      body: { token, expires_at: expires, permissions: { contents: 'write', pull_requests: 'write' } },
    };
  }

  /** Revokes every installation token issued so far (GitHub then answers 401 to them). */
  revokeInstallationTokens(): void {
    for (let i = this.options.tokens.length - 1; i >= 0; i--)
      if (this.options.tokens[i]!.startsWith('ghs_fake')) this.options.tokens.splice(i, 1);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
