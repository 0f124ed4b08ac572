// What the write-back needs of a git forge (GitHub, GitLab, Azure DevOps Repos, Gitea/Forgejo):
// find the open pull request of a head branch, open one, keep its title and body current, and
// read its state. Each forge's client maps its own API onto this; the write-back never sees
// a forge's shapes.
import type { ServiceError } from '../../runtime/json-call.ts';

export type ForgeProvider = 'github' | 'gitlab' | 'azure' | 'gitea';

export type PullRequestState = 'open' | 'merged' | 'closed';

export interface PullRequest {
  /** The forge's number for it (GitHub/Gitea number, GitLab iid, Azure DevOps id). */
  number: number;
  /** Its page, for people. */
  url: string;
  state: PullRequestState;
  title: string;
  body: string;
  /** The head branch's commit the forge last saw. */
  headSha?: string;
  /** Merged: the commit on the target branch that carries it (merge, squash or rebase). */
  mergeCommit?: string;
  mergedAt?: string;
  closedAt?: string;
}

export interface PullRequestDraft {
  /** The head branch (Patchline's push branch) and the target branch. */
  head: string;
  base: string;
  title: string;
  body: string;
  labels: readonly string[];
  /** User names (GitHub, GitLab, Gitea), org/team for GitHub teams, user ids for Azure DevOps. */
  reviewers: readonly string[];
  draft: boolean;
}

export interface Forge {
  readonly provider: ForgeProvider;
  /** The open pull request from `head` into `base`, if there is one. */
  findOpen(head: string, base: string, signal?: AbortSignal): Promise<PullRequest | undefined>;
  /**
   * Opens a pull request; when the forge says one already exists for the branches (a race
   * with another replica, or a restart), that one is found and returned instead.
   */
  create(draft: PullRequestDraft, signal?: AbortSignal): Promise<Created>;
  /** Sets the title and body of an open pull request. */
  update(number: number, content: { title: string; body: string }, signal?: AbortSignal): Promise<PullRequest>;
  get(number: number, signal?: AbortSignal): Promise<PullRequest>;
}

export interface Created {
  pullRequest: PullRequest;
  /** False: one already existed for the branches and was found. */
  created: boolean;
  /** Labels or reviewers the forge refused: the pull request exists without them. */
  warnings: string[];
}

/** How a client authenticates: headers for each call, renewed when the forge says they expired. */
export interface ForgeAuth {
  headers(signal?: AbortSignal): Promise<Record<string, string>>;
  /** The forge answered 401: a renewable credential (an installation token) is renewed; true when it was. */
  expired?(): boolean;
}

/** Counts of calls, for the bench and the metrics. */
export interface ForgeCalls {
  count: number;
}

export type ForgeError = ServiceError;
