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
import { updateRepository, type UpdateOutcome } from '../../rollout/git/update.ts';
import { GitError, GitWorkspace, type CommitSigning, type GitCredentials } from '../../rollout/git/workspace.ts';
import type { CredentialResolver } from '../credentials.ts';
import { withKind, type DecidedEvent } from '../lifecycle.ts';
import {
  batchDelayMs,
  decideBatching,
  decideFailure,
  decideOutcome,
  policiesOf,
  specProblems,
  targetsOf,
  unwritten,
  withIntent,
  type WriteBackDecision,
} from './decide.ts';

export interface GitWriteBackReconcilerDeps {
  get(key: ObjectKey): GitWriteBack | undefined;
  /** The cached ImagePolicies and RebuildTriggers of a namespace. */
  policies(namespace: string): ImagePolicy[];
  triggers(namespace: string): RebuildTrigger[];
  status: StatusWriter;
  events: EventRecorder;
  credentials: CredentialResolver;
  /** Where working copies live (an emptyDir in the cluster). */
  workDir: string;
  /** Each git command's time limit. */
  gitTimeoutMs?: number;
  registry?: Registry;
  now?: () => Date;
}

const keyOf = (k: ObjectKey): string => `${k.namespace}/${k.name}`;
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
    const wb = this.deps.get(key);
    if (!wb || wb.metadata?.deletionTimestamp || wb.spec.suspend === true || specProblems(wb).length > 0) return done;
    const now = this.now();
    const policies = policiesOf(wb, this.deps.policies(key.namespace));
    const targets = targetsOf(policies, this.deps.triggers(key.namespace));
    const intervalMs = parseDuration(wb.spec.interval ?? '10m');
    const waitMs = wb.status?.pending ? 0 : batchDelayMs(wb, policies, unwritten(wb, targets), now);
    if (waitMs > 0) {
      await this.write(wb, decideBatching(wb, unwritten(wb, targets).length, waitMs, now), ctx);
      return requeueAfter(waitMs);
    }
    const started = performance.now();
    let outcome: UpdateOutcome;
    try {
      outcome = await this.update(key, wb, targets, ctx);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      this.metrics?.runs.inc({ outcome: 'failed' });
      const auth = err instanceof GitError && err.auth;
      ctx.log.warn('git write-back failed', { error: message(err) });
      await this.write(wb, decideFailure(wb, message(err), auth, this.now()), ctx, true);
      return requeueAfter(auth ? intervalMs : 30_000);
    }
    this.metrics?.runs.inc({ outcome: outcome.kind });
    this.metrics?.duration.observe({ outcome: outcome.kind }, (performance.now() - started) / 1000);
    if (outcome.kind === 'abandoned') return requeueAfter(1_000);
    await this.write(wb, decideOutcome(wb, targets, outcome, this.now()), ctx, true);
    // A recovered change was an old one: the current values may still need writing.
    if (outcome.kind === 'recovered' || outcome.kind === 'contended')
      return requeueAfter(outcome.kind === 'recovered' ? 1_000 : 30_000);
    return requeueAfter(intervalMs);
  }

  private async update(key: ObjectKey, wb: GitWriteBack, targets: ReturnType<typeof targetsOf>, ctx: ReconcileContext) {
    const secret = wb.spec.secretRef
      ? await this.deps.credentials.secretData(key.namespace, wb.spec.secretRef.name, 'git credentials', ctx.signal)
      : undefined;
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
      credentials: gitCredentials(secret),
      timeoutMs: this.deps.gitTimeoutMs ?? 120_000,
      ...(signing ? { signing } : {}),
    });
    const author = wb.spec.commit?.author;
    const pending = wb.status?.pending?.changeID;
    return updateRepository(
      ws,
      {
        writeBack: keyOf(key),
        branch: wb.spec.branch ?? 'main',
        ...(wb.spec.push?.branch ? { pushBranch: wb.spec.push.branch } : {}),
        paths: wb.spec.paths ?? [],
        author: {
          name: author?.name ?? 'Patchline',
          email: author?.email ?? 'patchline@users.noreply.patchline.dev',
        },
        ...(wb.spec.commit?.messageTemplate ? { messageTemplate: wb.spec.commit.messageTemplate } : {}),
        targets,
        ...(pending ? { pending: { changeId: pending } } : {}),
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
