// GitWriteBack reconciler: gather (the policies that name it, the triggers that built their
// digests, the Secret with the credentials), wait for a batch to gather, run one update of the
// repository (rollout/git/update.ts) with the intent written to status before the push, then
// record what was pushed. Status is the only state: a restart resumes from it.
import { join } from 'node:path';
import {
  GitWriteBackType,
  type GitWriteBack,
  type ImagePolicy,
  type RebuildTrigger,
} from '../../api/v1alpha1/index.ts';
import { timestamp } from '../../runtime/conditions.ts';
import { parseDuration } from '../../runtime/duration.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { ObjectKey } from '../../runtime/kube-types.ts';
import { counter, histogram, exponentialBuckets, type Registry } from '../../runtime/metrics.ts';
import {
  done,
  requeueAfter,
  type ReconcileContext,
  type ReconcileResult,
  type Reconciler,
} from '../../runtime/reconciler.ts';
import type { StatusWriter } from '../../runtime/status.ts';
import { ServiceError } from '../../runtime/json-call.ts';
import { AZURE_DESCRIPTION_LIMIT } from '../../rollout/forge/azure.ts';
import type { GithubAppAuth } from '../../rollout/forge/auth.ts';
import { connectForge, forgeCredentials, type ForgeConnection } from '../../rollout/forge/index.ts';
import type { Forge, ForgeCalls, PullRequest } from '../../rollout/forge/types.ts';
import { pullRequestContent } from '../../rollout/git/evidence.ts';
import { updateRepository, type UpdateOutcome } from '../../rollout/git/update.ts';
import {
  GitError,
  GitWorkspace,
  isSshUrl,
  type CommitSigning,
  type GitCredentials,
} from '../../rollout/git/workspace.ts';
import type { CredentialResolver } from '../credentials.ts';
import { withKind, type DecidedEvent } from '../lifecycle.ts';
import {
  batchDelayMs,
  decideBatching,
  decideFailure,
  decideInvalid,
  decideOutcome,
  policiesOf,
  specProblems,
  targetsOf,
  unwritten,
  withIntent,
  type WriteBackDecision,
  type WriteTarget,
} from './decide.ts';
import { proposable, recordPullRequestEnd, stillDeclined, type Proposal } from './pull-request.ts';

export interface GitWriteBackReconcilerDeps {
  get(key: ObjectKey): GitWriteBack | undefined;
  /** The cached ImagePolicies and RebuildTriggers of a namespace. */
  policies(namespace: string): ImagePolicy[];
  triggers(namespace: string): RebuildTrigger[];
  status: StatusWriter;
  events: EventRecorder;
  credentials: Pick<CredentialResolver, 'secretData'>;
  /** Where working copies live (an emptyDir in the cluster). */
  workDir: string;
  /** Each git command's time limit. */
  gitTimeoutMs?: number;
  registry?: Registry;
  now?: () => Date;
}

const keyOf = (k: ObjectKey): string => `${k.namespace}/${k.name}`;
/** How often an open pull request is looked at (at most: spec.interval when shorter). */
const PULL_REQUEST_POLL_MS = 60_000;

type Declined = NonNullable<NonNullable<GitWriteBack['status']>['declined']>;

interface Access {
  /** The Secret's git credentials. */
  secret: GitCredentials;
  /** A GitHub App named by the Secret: its installation token is git's password over HTTPS. */
  app?: GithubAppAuth;
  /** Pull request mode: the forge. */
  forge?: ForgeConnection;
}

/** The forge's title and body say what Patchline would write (line endings and a cut body aside). */
function sameContent(pr: PullRequest, content: { title: string; body: string }): boolean {
  const norm = (s: string): string => s.replace(/\r\n/g, '\n').trim();
  const title = pr.title.replace(/^(draft|wip):\s*/i, '');
  const have = norm(pr.body);
  const want = norm(content.body);
  // Azure DevOps keeps 4000 characters: a body cut there is the same body.
  const cut = have.length >= AZURE_DESCRIPTION_LIMIT - 10 && want.startsWith(have);
  return title === content.title && (have === want || cut);
}
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The Secret's keys, as the git transports read them (Flux's names). */
export function gitCredentials(data: Record<string, string> | undefined): GitCredentials {
  if (!data) return {};
  const c: GitCredentials = {};
  if (data.username !== undefined) c.username = data.username;
  if (data.password !== undefined) c.password = data.password;
  if (data.bearerToken) c.bearerToken = data.bearerToken;
  if (data['ca.crt']) c.caCert = data['ca.crt'];
  if (data.identity) c.identity = data.identity;
  if (data.known_hosts) c.knownHosts = data.known_hosts;
  return c;
}

/** The commit signing key from its Secret (identity for ssh; git.asc and passphrase for openpgp). */
export function commitSigning(format: 'ssh' | 'openpgp', data: Record<string, string>, secret: string): CommitSigning {
  if (format === 'ssh') {
    if (!data.identity) throw new GitError(`the signing key Secret ${secret} has no key "identity"`, true);
    return { format: 'ssh', identity: data.identity };
  }
  if (!data['git.asc']) throw new GitError(`the signing key Secret ${secret} has no key "git.asc"`, true);
  return {
    format: 'openpgp',
    armoredKey: data['git.asc'],
    ...(data.passphrase ? { passphrase: data.passphrase } : {}),
  };
}

export class GitWriteBackReconciler implements Reconciler {
  private readonly deps: GitWriteBackReconcilerDeps;
  private readonly metrics;

  constructor(deps: GitWriteBackReconcilerDeps) {
    this.deps = deps;
    const r = deps.registry;
    this.metrics = r
      ? {
          runs: counter(r, {
            name: 'patchline_git_writeback_runs_total',
            help: 'Write-back update runs, by outcome (pushed, unchanged, recovered, contended, abandoned, failed).',
            labelNames: ['outcome'] as const,
          }),
          forgeRequests: counter(r, {
            name: 'patchline_forge_requests_total',
            help: 'Requests to forge APIs (pull requests, GitHub App tokens), by provider.',
            labelNames: ['provider'] as const,
          }),
          duration: histogram(r, {
            name: 'patchline_git_writeback_duration_seconds',
            help: 'Time of a write-back update run (fetch, edit, commit, push).',
            labelNames: ['outcome'] as const,
            buckets: exponentialBuckets(0.05, 2, 12),
          }),
        }
      : undefined;
  }

  private now(): Date {
    return (this.deps.now ?? (() => new Date()))();
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const cached = this.deps.get(key);
    if (!cached || cached.metadata?.deletionTimestamp || cached.spec.suspend === true) return done;
    const problems = specProblems(cached);
    if (problems.length > 0) {
      await this.write(cached, decideInvalid(cached, problems, this.now()), ctx);
      return done;
    }
    let wb = cached;
    const intervalMs = parseDuration(wb.spec.interval ?? '10m');
    const all = targetsOf(policiesOf(wb, this.deps.policies(key.namespace)), this.deps.triggers(key.namespace));
    const calls: ForgeCalls = { count: 0 };
    const started = performance.now();
    let run: { outcome: UpdateOutcome; proposal?: Proposal; declined: Declined; targets: WriteTarget[] } | 'batching';
    let access: Access | undefined;
    try {
      access = await this.access(key, wb, calls, ctx);
      const tracked = access.forge ? await this.trackPullRequest(wb, access.forge, ctx) : undefined;
      if (tracked?.ended) wb = { ...wb, status: tracked.ended };
      const declined = wb.spec.pullRequest ? stillDeclined(wb, all) : [];
      const targets = proposable(all, declined);
      const waitMs = wb.status?.pending
        ? 0
        : batchDelayMs(wb, this.deps.policies(key.namespace), unwritten(wb, targets), this.now());
      if (waitMs > 0) {
        await this.write(wb, decideBatching(wb, unwritten(wb, targets).length, waitMs, this.now()), ctx);
        this.countForgeCalls(wb, calls);
        return requeueAfter(waitMs);
      }
      const outcome = await this.update(key, wb, targets, access, ctx);
      const proposal =
        access.forge && (outcome.kind === 'pushed' || outcome.kind === 'kept')
          ? await this.propose(key, wb, access.forge.forge, targets, outcome, tracked?.open, ctx)
          : undefined;
      run = { outcome, declined, targets, ...(proposal ? { proposal } : {}) };
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      this.countForgeCalls(wb, calls);
      this.metrics?.runs.inc({ outcome: 'failed' });
      // An installation token git was refused with (revoked) is dropped: the next run mints one.
      const appRefused = err instanceof GitError && err.auth && access?.app?.expired() === true;
      const auth =
        !appRefused &&
        ((err instanceof GitError && err.auth) || (err instanceof ServiceError && err.kind === 'rejected'));
      ctx.log.warn('git write-back failed', { error: message(err) });
      await this.write(wb, decideFailure(wb, message(err), auth, this.now()), ctx, true);
      return requeueAfter(
        auth ? intervalMs : err instanceof ServiceError && err.retryAfterMs ? err.retryAfterMs : 30_000,
      );
    }
    this.countForgeCalls(wb, calls);
    const { outcome } = run;
    this.metrics?.runs.inc({ outcome: outcome.kind });
    this.metrics?.duration.observe({ outcome: outcome.kind }, (performance.now() - started) / 1000);
    if (outcome.kind === 'abandoned') return requeueAfter(1_000);
    const decision = decideOutcome(wb, run.targets, outcome, this.now(), {
      ...(run.proposal ? { proposal: run.proposal } : {}),
      declined: run.declined,
    });
    await this.write(wb, decision, ctx, true);
    // A recovered change was an old one: the current values may still need writing.
    if (outcome.kind === 'recovered') return requeueAfter(1_000);
    if (outcome.kind === 'contended' || run.proposal?.error) return requeueAfter(30_000);
    // An open pull request is looked at more often than the repository: its merge moves the policies on.
    return requeueAfter(
      decision.status.pullRequest?.state === 'Open' ? Math.min(intervalMs, PULL_REQUEST_POLL_MS) : intervalMs,
    );
  }

  private countForgeCalls(wb: GitWriteBack, calls: ForgeCalls): void {
    if (calls.count > 0)
      this.metrics?.forgeRequests.inc({ provider: wb.spec.pullRequest?.provider ?? 'github' }, calls.count);
  }

  /**
   * The credentials of this run: the Secret, the forge client in pull request mode, and what
   * git presents over HTTPS (a GitHub App's installation token when the Secret names an App).
   */
  private async access(key: ObjectKey, wb: GitWriteBack, calls: ForgeCalls, ctx: ReconcileContext): Promise<Access> {
    const secret = wb.spec.secretRef
      ? await this.deps.credentials.secretData(key.namespace, wb.spec.secretRef.name, 'git credentials', ctx.signal)
      : undefined;
    const forgeSecret = forgeCredentials(secret);
    const spec = wb.spec.pullRequest;
    const forge = spec
      ? connectForge(
          {
            provider: spec.provider,
            ...(spec.apiURL
              ? { apiURL: spec.apiURL }
              : secret?.githubAppBaseURL
                ? { apiURL: secret.githubAppBaseURL }
                : {}),
            ...(spec.repository ? { repository: spec.repository } : {}),
          },
          wb.spec.url,
          forgeSecret,
          calls,
        )
      : undefined;
    let app = forge?.app;
    if (!app && forgeSecret.githubApp && !isSshUrl(wb.spec.url))
      app = connectForge(
        { provider: 'github', ...(secret?.githubAppBaseURL ? { apiURL: secret.githubAppBaseURL } : {}) },
        wb.spec.url,
        forgeSecret,
        calls,
      ).app;
    return { secret: gitCredentials(secret), ...(app ? { app } : {}), ...(forge ? { forge } : {}) };
  }

  /** What git presents: the Secret's credentials, or a GitHub App's installation token as it is now. */
  private async gitCredentialsOf(access: Access, url: string, signal: AbortSignal): Promise<GitCredentials> {
    if (!access.app || isSshUrl(url)) return access.secret;
    const { bearerToken: _b, ...rest } = access.secret;
    // GitHub's convention for installation tokens over HTTPS.
    return { ...rest, username: 'x-access-token', password: await access.app.token(signal) };
  }

  /**
   * The open pull request as the forge sees it now; a merged or closed one is recorded
   * (commits for the merged policies, or declined digests) before anything else happens.
   */
  private async trackPullRequest(
    wb: GitWriteBack,
    forge: ForgeConnection,
    ctx: ReconcileContext,
  ): Promise<{ open?: PullRequest; ended?: GitWriteBack['status'] } | undefined> {
    const known = wb.status?.pullRequest;
    if (known?.state !== 'Open' || known.number === undefined) return undefined;
    const pr = await forge.forge.get(known.number, ctx.signal);
    if (pr.state === 'open') return { open: pr };
    const ended = recordPullRequestEnd(wb, pr, this.now());
    const key = { namespace: wb.metadata?.namespace ?? '', name: wb.metadata?.name ?? '' };
    const written = await this.deps.status.commit<GitWriteBack, NonNullable<GitWriteBack['status']>>(
      GitWriteBackType,
      key,
      (current) =>
        current.status?.pullRequest?.number === known.number && current.status?.pullRequest?.state === 'Open'
          ? ended.status
          : undefined,
    );
    if (written === undefined) return undefined;
    this.record(wb, ended.events);
    ctx.log.info('pull request ended', { number: pr.number, state: pr.state });
    return { ended: ended.status };
  }

  /**
   * Opens the pull request of the push branch, or finds it (a restart, another replica) and
   * keeps its title and body current. A forge failure does not undo the push: it is reported
   * and retried on the next run, which finds the branch holding the change.
   */
  private async propose(
    key: ObjectKey,
    wb: GitWriteBack,
    forge: Forge,
    targets: readonly WriteTarget[],
    outcome: Extract<UpdateOutcome, { kind: 'pushed' | 'kept' }>,
    open: PullRequest | undefined,
    ctx: ReconcileContext,
  ): Promise<Proposal> {
    const spec = wb.spec.pullRequest!;
    const head = outcome.branch;
    const base = wb.spec.branch ?? 'main';
    const changes = outcome.kind === 'pushed' ? outcome.intent.changes : outcome.changes;
    const changeId = outcome.kind === 'pushed' ? outcome.intent.changeId : outcome.changeId;
    const content = pullRequestContent(
      {
        ...(spec.titleTemplate ? { title: spec.titleTemplate } : {}),
        ...(spec.bodyTemplate ? { body: spec.bodyTemplate } : {}),
      },
      { writeBack: keyOf(key), changeId, contexts: targets.map((t) => t.context), changes },
    );
    try {
      let pr = open && wb.status?.pullRequest?.headBranch === head ? open : undefined;
      let action: Proposal['action'];
      let warnings: string[] = [];
      if (!pr) {
        pr = await forge.findOpen(head, base, ctx.signal);
        if (pr) action = 'found';
      }
      if (!pr) {
        const made = await forge.create(
          {
            head,
            base,
            ...content,
            labels: spec.labels ?? [],
            reviewers: spec.reviewers ?? [],
            draft: spec.draft ?? false,
          },
          ctx.signal,
        );
        pr = made.pullRequest;
        action = made.created ? 'created' : 'found';
        warnings = made.warnings;
      }
      if (action !== 'created' && !sameContent(pr, content)) {
        const prefix = /^(draft|wip):\s*/i.exec(pr.title)?.[0] ?? '';
        pr = await forge.update(pr.number, { title: `${prefix}${content.title}`, body: content.body }, ctx.signal);
        action = 'updated';
      }
      return { pullRequest: pr, action: action ?? 'unchanged', warnings };
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      ctx.log.warn('pull request failed', { error: message(err) });
      return {
        warnings: [],
        error: { message: message(err), retryable: !(err instanceof ServiceError && err.kind === 'rejected') },
      };
    }
  }

  private async update(
    key: ObjectKey,
    wb: GitWriteBack,
    targets: readonly WriteTarget[],
    access: Access,
    ctx: ReconcileContext,
  ): Promise<UpdateOutcome> {
    const signingKey = wb.spec.commit?.signingKey;
    const signing = signingKey
      ? commitSigning(
          signingKey.format ?? 'openpgp',
          await this.deps.credentials.secretData(key.namespace, signingKey.secretRef.name, 'signing key', ctx.signal),
          `${key.namespace}/${signingKey.secretRef.name}`,
        )
      : undefined;
    const ws = new GitWorkspace({
      dir: join(this.deps.workDir, key.namespace, key.name),
      url: wb.spec.url,
      credentials: await this.gitCredentialsOf(access, wb.spec.url, ctx.signal),
      timeoutMs: this.deps.gitTimeoutMs ?? 120_000,
      ...(signing ? { signing } : {}),
    });
    const author = wb.spec.commit?.author;
    const pending = wb.status?.pending?.changeID;
    const pushBranch = wb.spec.push?.branch;
    const last = wb.status?.lastCommit;
    const previous =
      pushBranch && last?.branch === pushBranch && last.changeID && last.sha
        ? { changeId: last.changeID, sha: last.sha }
        : undefined;
    return updateRepository(
      ws,
      {
        writeBack: keyOf(key),
        branch: wb.spec.branch ?? 'main',
        ...(pushBranch ? { pushBranch } : {}),
        paths: wb.spec.paths ?? [],
        author: {
          name: author?.name ?? 'Patchline',
          email: author?.email ?? 'patchline@users.noreply.patchline.dev',
        },
        ...(wb.spec.commit?.messageTemplate ? { messageTemplate: wb.spec.commit.messageTemplate } : {}),
        targets,
        ...(pending ? { pending: { changeId: pending } } : {}),
        ...(previous ? { previous } : {}),
        now: () => this.now(),
      },
      // The intent goes to status before the push, on a fresh read: a status that moved on
      // (another replica, a newer decision) abandons this run.
      async (intent) => {
        const changed = new Set(intent.changes.map((c) => c.policy));
        const written = await this.deps.status.commit<GitWriteBack, NonNullable<GitWriteBack['status']>>(
          GitWriteBackType,
          key,
          (current) => {
            if ((current.status?.pending?.changeID ?? '') !== (pending ?? '')) return undefined;
            return withIntent(current.status ?? {}, intent, targets, changed, this.now());
          },
        );
        return written !== undefined;
      },
    );
  }

  /** Writes the decided status on a fresh read (the intent may have changed the object since it was cached). */
  private async write(
    wb: GitWriteBack,
    decision: WriteBackDecision,
    ctx: ReconcileContext,
    fresh = false,
  ): Promise<void> {
    const key = { namespace: wb.metadata?.namespace ?? '', name: wb.metadata?.name ?? '' };
    const status = fresh
      ? await this.deps.status.commit<GitWriteBack, NonNullable<GitWriteBack['status']>>(
          GitWriteBackType,
          key,
          () => decision.status,
        )
      : (await this.deps.status.write(GitWriteBackType, wb, decision.status))
        ? decision.status
        : undefined;
    if (status === undefined) return;
    this.record(wb, decision.events);
    ctx.log.info('status updated', { commit: status.lastCommit?.shortSHA, at: timestamp(this.now()) });
  }

  private record(wb: GitWriteBack, events: readonly DecidedEvent[]): void {
    const regarding = withKind(wb, 'GitWriteBack');
    for (const e of events) this.deps.events.record(regarding, e.type, e.reason, e.action, e.note, e.details);
  }
}
