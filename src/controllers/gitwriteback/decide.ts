// What a GitWriteBack should write and what its status says, as pure functions of the resource,
// the ImagePolicies that name it, the RebuildTriggers of the namespace and the outcome of an
// update run. The reconciler gathers, runs the update (rollout/git/update.ts) and writes.
import {
  ReconcileRequestedAt,
  type GitWriteBack,
  type GitWriteBackStatus,
  type ImagePolicy,
  type RebuildTrigger,
} from '../../api/v1alpha1/index.ts';
import {
  Ready,
  Reconciling,
  Stalled,
  applyConditions,
  timestamp,
  type ConditionInput,
} from '../../runtime/conditions.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { parseReference, repositoryName, shortDigest } from '../../registry/reference.ts';
import { forgeLocationProblem } from '../../rollout/forge/index.ts';
import type { ArgoCdOverride } from '../../rollout/git/argocd.ts';
import type { ImageTarget } from '../../rollout/git/edit.ts';
import type { ChangeContext, CheckEvidence, RebuildEvidence } from '../../rollout/git/message.ts';
import type { UpdateOutcome } from '../../rollout/git/update.ts';
import { declinedCondition, declinedEntries, recordProposal, type Proposal } from './pull-request.ts';
import { repositoryOf } from '../../rollout/running.ts';
import type { DecidedEvent } from '../lifecycle.ts';
import { checkDuration, type SpecProblem } from '../spec-checks.ts';

type Status = GitWriteBackStatus;
export type WriteTarget = ImageTarget & { context: ChangeContext; argocd?: ArgoCdOverride };

export const WriteBackReasons = {
  Committed: 'Committed',
  UpToDate: 'UpToDate',
  Batching: 'Batching',
  GitFailed: 'GitOperationFailed',
  AccessDenied: 'AccessDenied',
  Contended: 'PushContended',
  NoPolicies: 'NoPolicies',
} as const;

export function specProblems(wb: GitWriteBack): SpecProblem[] {
  const problems = [
    ...checkDuration('interval', wb.spec.interval, { minMs: 30_000 }),
    ...checkDuration('batchWindow', wb.spec.batchWindow, { maxMs: 600_000 }),
  ];
  const pr = wb.spec.pullRequest;
  if (pr && !wb.spec.push?.branch)
    problems.push({
      field: 'spec.pullRequest',
      message: 'pull requests need push.branch, the branch they are opened from',
    });
  const where = pr ? forgeLocationProblem(pr, wb.spec.url) : undefined;
  if (where) problems.push({ field: 'spec.pullRequest', message: where });
  return problems;
}

/** The ImagePolicies in GitOps mode that name this write-back. */
export function policiesOf(wb: GitWriteBack, policies: readonly ImagePolicy[]): ImagePolicy[] {
  return policies
    .filter(
      (p) =>
        p.spec.rollout?.mode === 'GitOps' &&
        p.spec.rollout.gitOps?.writeBackRef.name === wb.metadata?.name &&
        p.metadata?.deletionTimestamp === undefined,
    )
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

/**
 * The trigger's last build is for the base digest it follows now (in flight or succeeded): a
 * digest of its target that the policy accepted meanwhile is that rebuild's output, pushed
 * before the build service reported back.
 */
function builtForCurrentBase(t: RebuildTrigger): boolean {
  const b = t.status?.build;
  const base = t.status?.bases?.find((x) => x.image === b?.baseImage);
  const phases: readonly string[] = ['Starting', 'Queued', 'Running', 'Succeeded'];
  return phases.includes(b?.phase ?? '') && !!base?.digest && b?.baseDigest === base.digest;
}

/** The rebuild that produced `digest` of `repository`, for the commit message. */
function rebuildOf(
  repository: string,
  digest: string,
  triggers: readonly RebuildTrigger[],
): RebuildEvidence | undefined {
  for (const t of triggers) {
    if (repositoryOf(t.spec.target.image) !== repository) continue;
    const b = t.status?.build;
    // Landed, or reported by the build (the policy may accept it before the trigger confirms it).
    if (t.status?.landed?.digest !== digest && b?.outputDigest !== digest && !builtForCurrentBase(t)) continue;
    const base = t.status?.bases?.find((x) => x.image === b?.baseImage);
    return {
      trigger: `${t.metadata?.namespace ?? ''}/${t.metadata?.name ?? ''}`,
      baseImage: b?.baseImage ?? '',
      ...(base?.previousDigest ? { fromBase: base.previousDigest } : {}),
      toBase: base?.digest ?? '',
      ...(b?.id ? { buildId: b.id } : {}),
      ...(b?.url ? { buildUrl: b.url } : {}),
    };
  }
  return undefined;
}

const MAX_WORKLOADS = 20;

/** The checks the desired digest passed (when it is the newest candidate), with the scan's findings. */
function checksOf(p: ImagePolicy, digest: string): CheckEvidence[] {
  if (digest !== p.status?.latest?.digest) return [];
  return (p.status.latest.checks ?? [])
    .filter((c) => c.passed)
    .map((c) => ({
      name: c.name,
      message: c.message ?? '',
      ...(c.findings
        ? {
            findings: {
              critical: c.findings.critical ?? 0,
              high: c.findings.high ?? 0,
              medium: c.findings.medium ?? 0,
              low: c.findings.low ?? 0,
              unknown: c.findings.unknown ?? 0,
            },
          }
        : {}),
    }));
}

/** The digest the workloads run now (which the desired one replaces) and its scan; the containers reached. */
function reachOf(p: ImagePolicy, digest: string): Pick<ChangeContext, 'replaced' | 'workloads'> {
  const workloads = p.status?.workloads ?? [];
  const running = workloads.find((w) => w.runningDigest && w.runningDigest !== digest);
  const v = running?.vulnerabilities;
  const replaced = running?.runningDigest
    ? {
        digest: running.runningDigest,
        ...(v?.scannedAt || v?.report
          ? {
              findings: {
                critical: v.critical ?? 0,
                high: v.high ?? 0,
                medium: v.medium ?? 0,
                low: v.low ?? 0,
                unknown: v.unknown ?? 0,
              },
            }
          : {}),
      }
    : undefined;
  const names = [...new Set(workloads.map((w) => `${w.kind}/${w.name} (${w.container})`))];
  return {
    ...(replaced ? { replaced } : {}),
    ...(names.length > 0 ? { workloads: names.slice(0, MAX_WORKLOADS) } : {}),
  };
}

/** What each policy wants git to say: its decided value (status.gitOps.desired). */
export function targetsOf(policies: readonly ImagePolicy[], triggers: readonly RebuildTrigger[]): WriteTarget[] {
  const out: WriteTarget[] = [];
  for (const p of policies) {
    const desired = p.status?.gitOps?.desired;
    if (!desired?.digest) continue;
    let repository: string;
    try {
      repository = repositoryName(parseReference(p.spec.image));
    } catch {
      continue;
    }
    const namespace = p.metadata?.namespace ?? '';
    const name = p.metadata?.name ?? '';
    const rebuild = rebuildOf(repository, desired.digest, triggers);
    const reason = desired.reason === 'Revert' ? 'Revert' : 'Rollout';
    out.push({
      policy: { namespace, name },
      repository: p.spec.image,
      ...(desired.tag ? { tag: desired.tag } : {}),
      digest: desired.digest,
      format: p.spec.rollout?.gitOps?.format ?? 'TagAndDigest',
      ...(p.spec.rollout?.gitOps?.argocd ? { argocd: p.spec.rollout.gitOps.argocd } : {}),
      context: {
        policy: `${namespace}/${name}`,
        image: p.spec.image,
        ...(desired.tag ? { tag: desired.tag } : {}),
        digest: desired.digest,
        reason,
        checks: checksOf(p, desired.digest),
        ...(rebuild ? { rebuild } : {}),
        ...reachOf(p, desired.digest),
        ...(reason === 'Revert' ? { why: `the rollout of ${shortDigest(p.status?.failedDigest ?? '')} failed` } : {}),
      },
    });
  }
  return out;
}

/** Targets git does not say yet, as far as status knows. */
export function unwritten(wb: GitWriteBack, targets: readonly WriteTarget[]): WriteTarget[] {
  const known = new Map((wb.status?.policies ?? []).map((p) => [p.name, p]));
  return targets.filter((t) => {
    const k = known.get(t.policy.name);
    return !k || k.digest !== t.digest || (k.tag ?? '') !== (t.tag ?? '');
  });
}

/**
 * How long to wait for more policies before committing: until batchWindow has passed since the
 * newest unwritten decision (so changes arriving together share one commit), but no longer than
 * ten windows after the oldest. 0: commit now.
 */
export function batchDelayMs(
  wb: GitWriteBack,
  policies: readonly ImagePolicy[],
  pending: readonly WriteTarget[],
  now: Date,
): number {
  const windowMs = parseDuration(wb.spec.batchWindow ?? '5s');
  if (windowMs <= 0 || pending.length === 0) return 0;
  const names = new Set(pending.map((t) => t.policy.name));
  const since = policies
    .filter((p) => names.has(p.metadata?.name ?? ''))
    .map((p) => Date.parse(p.status?.gitOps?.desired?.since ?? ''))
    .filter(Number.isFinite);
  if (since.length === 0) return 0;
  const quietAt = Math.max(...since) + windowMs;
  const latest = Math.min(...since) + 10 * windowMs;
  return Math.max(0, Math.min(quietAt, latest) - now.getTime());
}

/** Status fields common to every outcome: generation, reconcile request. */
function base(wb: GitWriteBack): Status {
  const status: Status = { ...(wb.status ?? {}), observedGeneration: wb.metadata?.generation ?? 0 };
  const requested = wb.metadata?.annotations?.[ReconcileRequestedAt];
  if (requested !== undefined) status.lastHandledReconcileAt = requested;
  return status;
}

function condition(wb: GitWriteBack, type: string, status: ConditionInput['status'], reason: string, message: string) {
  return { type, status, reason, message, observedGeneration: wb.metadata?.generation ?? 0 };
}

/** Per policy, what git says: kept from before unless this run wrote or found it. */
function recordPolicies(
  previous: Status['policies'],
  targets: readonly WriteTarget[],
  written: ReadonlySet<string>,
  commit: { sha: string; at: string } | undefined,
  files: ReadonlyMap<string, string[]> | undefined,
): NonNullable<Status['policies']> {
  // (commit undefined: nothing new carries the values; earlier commits are kept.)
  const before = new Map((previous ?? []).map((p) => [p.name, p]));
  return targets.map((t) => {
    const name = t.policy.name;
    const key = `${t.policy.namespace}/${name}`;
    const prev = before.get(name);
    const found = files?.get(key);
    const entry: NonNullable<Status['policies']>[number] = { name, digest: t.digest, ...(t.tag ? { tag: t.tag } : {}) };
    const same = prev && prev.digest === t.digest && (prev.tag ?? '') === (t.tag ?? '');
    if (commit && written.has(key)) {
      entry.commit = commit.sha;
      entry.committedAt = commit.at;
    } else if (prev?.commit && same) {
      entry.commit = prev.commit;
      if (prev.committedAt) entry.committedAt = prev.committedAt;
    } else if (commit && found) {
      // The files already said it: the commit (a descendant of where it was written) carries it.
      entry.commit = commit.sha;
      entry.committedAt = commit.at;
    }
    const names = found ?? prev?.files;
    if (names?.length) entry.files = names.slice(0, 20);
    if (files && !found)
      entry.message = `no file under spec.paths names ${key} (a marker) or ${t.repository} (a Kustomize images entry)`;
    return entry;
  });
}

export interface WriteBackDecision {
  status: Status;
  events: DecidedEvent[];
}

/** What one kind of outcome changes: status fields, the Ready condition, Events. */
interface Recorded {
  ready: {
    type: string;
    status: ConditionInput['status'];
    reason: string;
    message: string;
    observedGeneration: number;
  };
  /** Retrying will not help (the forge refused the credentials): Stalled too. */
  stalled?: boolean;
  events: DecidedEvent[];
}

type Outcome<K extends UpdateOutcome['kind']> = Extract<UpdateOutcome, { kind: K }>;

/** Pushed before a crash: the commit carries the values of the pending change. */
function recordRecovered(wb: GitWriteBack, status: Status, outcome: Outcome<'recovered'>, at: string): Recorded {
  // Pull request mode: the branch holds the change, the request is opened (or found) next run.
  const carried = (wb.status?.pending?.policies ?? []).map((p) =>
    wb.spec.pullRequest
      ? { ...p, message: 'pushed before a restart; the pull request is opened on the next run' }
      : { ...p, commit: outcome.sha, committedAt: at },
  );
  const names = new Set(carried.map((p) => p.name));
  status.policies = [...(wb.status?.policies ?? []).filter((p) => !names.has(p.name)), ...carried].sort((x, y) =>
    x.name.localeCompare(y.name),
  );
  status.lastCommit = {
    sha: outcome.sha,
    shortSHA: outcome.sha.slice(0, 12),
    time: at,
    changeID: outcome.changeId,
    branch: wb.spec.push?.branch ?? wb.spec.branch ?? 'main',
  };
  const short = outcome.sha.slice(0, 12);
  return {
    ready: condition(wb, Ready, 'True', WriteBackReasons.Committed, `found ${short}, pushed before a restart`),
    events: [
      {
        type: 'Normal',
        reason: 'CommitRecovered',
        action: 'WriteBack',
        note: `change ${outcome.changeId} was pushed before a restart as ${short}`,
      },
    ],
  };
}

/** The files already say every value: the head carries them. */
function recordUnchanged(
  wb: GitWriteBack,
  status: Status,
  targets: readonly WriteTarget[],
  outcome: Outcome<'unchanged'>,
  at: string,
): Recorded {
  status.policies = recordPolicies(wb.status?.policies, targets, new Set(), { sha: outcome.head, at }, outcome.files);
  const message = `${wb.spec.branch ?? 'main'} at ${outcome.head.slice(0, 12)} says every value (${targets.length} policies)`;
  return { ready: condition(wb, Ready, 'True', WriteBackReasons.UpToDate, message), events: [] };
}

function recordPushed(
  wb: GitWriteBack,
  status: Status,
  targets: readonly WriteTarget[],
  outcome: Outcome<'pushed'>,
  at: string,
): Recorded {
  const written = new Set(outcome.intent.changes.map((c) => c.policy));
  const short = outcome.sha.slice(0, 12);
  const subject = (outcome.message.split('\n')[0] ?? '').slice(0, 1024);
  status.lastCommit = {
    sha: outcome.sha,
    shortSHA: short,
    time: at,
    branch: outcome.branch,
    changeID: outcome.intent.changeId,
    message: subject,
  };
  status.policies = recordPolicies(wb.status?.policies, targets, written, { sha: outcome.sha, at }, outcome.files);
  const note = `pushed ${short} to ${outcome.branch}: ${outcome.intent.changes.length} value(s) of ${written.size} policies`;
  return {
    ready: condition(wb, Ready, 'True', WriteBackReasons.Committed, `pushed ${short} to ${outcome.branch}: ${subject}`),
    events: [
      {
        type: 'Normal',
        reason: 'Committed',
        action: 'WriteBack',
        note,
        details: { commit: outcome.sha, branch: outcome.branch, policies: [...written] },
      },
    ],
  };
}

/** The push branch already holds this change: nothing pushed, nothing to record but the files found. */
function recordKept(
  wb: GitWriteBack,
  status: Status,
  targets: readonly WriteTarget[],
  outcome: Outcome<'kept'>,
): Recorded {
  status.policies = recordPolicies(wb.status?.policies, targets, new Set(), undefined, outcome.files);
  const message = `${outcome.branch} at ${outcome.sha.slice(0, 12)} already holds change ${outcome.changeId}`;
  return { ready: condition(wb, Ready, 'True', WriteBackReasons.Committed, message), events: [] };
}

/** Pull request mode, after a push (or a push branch holding the change): the request it proposes. */
function recordPushedProposal(
  wb: GitWriteBack,
  status: Status,
  targets: readonly WriteTarget[],
  outcome: Outcome<'pushed'> | Outcome<'kept'>,
  proposal: Proposal,
  at: string,
): Recorded {
  const recorded =
    outcome.kind === 'pushed'
      ? recordPushed(wb, status, targets, outcome, at)
      : recordKept(wb, status, targets, outcome);
  const changes = outcome.kind === 'pushed' ? outcome.intent.changes : outcome.changes;
  const changeId = outcome.kind === 'pushed' ? outcome.intent.changeId : outcome.changeId;
  const policies = new Set(changes.map((c) => c.policy));
  const pr = recordProposal(
    wb,
    status,
    { sha: outcome.sha, changeId, branch: outcome.branch, policies },
    targets,
    proposal,
    at,
  );
  // The push is not the news in this mode: the request is.
  const events = recorded.events.filter((e) => e.reason !== 'Committed');
  return {
    ready: condition(wb, Ready, pr.ready.status, pr.ready.reason, pr.ready.message.slice(0, 2000)),
    stalled: pr.ready.stalled,
    events: [...events, ...pr.events],
  };
}

/** What one run recorded: the Ready condition and Events, per kind of outcome. */
function recordRun(
  wb: GitWriteBack,
  status: Status,
  targets: readonly WriteTarget[],
  outcome: Exclude<UpdateOutcome, { kind: 'abandoned' }>,
  proposal: Proposal | undefined,
  at: string,
): Recorded {
  if (outcome.kind === 'contended') {
    const message = `the push kept losing races with other commits: ${outcome.reason}`;
    return {
      ready: condition(wb, Ready, 'False', WriteBackReasons.Contended, message),
      events: [{ type: 'Warning', reason: WriteBackReasons.Contended, action: 'WriteBack', note: message }],
    };
  }
  delete status.pending;
  if (outcome.kind === 'recovered') return recordRecovered(wb, status, outcome, at);
  if (outcome.kind === 'unchanged') return recordUnchanged(wb, status, targets, outcome, at);
  if (proposal) return recordPushedProposal(wb, status, targets, outcome, proposal, at);
  if (outcome.kind === 'kept') return recordKept(wb, status, targets, outcome);
  return recordPushed(wb, status, targets, outcome, at);
}

/**
 * The status after an update run, and the Events it deserves. `declined` are the digests
 * held back (pull request mode); `proposal` what the forge step did after a push.
 */
export function decideOutcome(
  wb: GitWriteBack,
  targets: readonly WriteTarget[],
  outcome: UpdateOutcome,
  now: Date,
  options: { proposal?: Proposal; declined?: Status['declined'] } = {},
): WriteBackDecision {
  if (outcome.kind === 'abandoned') return { status: wb.status ?? {}, events: [] };
  const status = base(wb);
  const recorded = recordRun(wb, status, targets, outcome, options.proposal, timestamp(now));
  const problems = 'problems' in outcome ? outcome.problems : [];
  if (problems.length > 0) {
    const note = problems.slice(0, 5).join('; ').slice(0, 1024);
    recorded.events.push({ type: 'Warning', reason: 'FilesSkipped', action: 'WriteBack', note });
  }
  const declined = options.declined ?? wb.status?.declined ?? [];
  if (declined.length > 0 || status.declined) {
    status.declined = declined;
    status.policies = declinedEntries(status.policies, declined);
  }
  const stalled = recorded.stalled
    ? condition(wb, Stalled, 'True', recorded.ready.reason, recorded.ready.message)
    : undefined;
  status.conditions = applyConditions(
    wb.status?.conditions,
    [recorded.ready, stalled ?? { remove: Stalled }, { remove: Reconciling }, declinedCondition(wb, declined)],
    now,
  );
  return { status, events: recorded.events };
}

/** The status when git failed: Stalled when retrying cannot help (credentials, host key). */
export function decideFailure(wb: GitWriteBack, message: string, auth: boolean, now: Date): WriteBackDecision {
  const status = base(wb);
  const reason = auth ? WriteBackReasons.AccessDenied : WriteBackReasons.GitFailed;
  const ready = condition(wb, Ready, 'False', reason, message.slice(0, 2000));
  status.conditions = applyConditions(
    wb.status?.conditions,
    [
      ready,
      auth ? condition(wb, Stalled, 'True', reason, ready.message) : { remove: Stalled },
      { remove: Reconciling },
    ],
    now,
  );
  const before = wb.status?.conditions?.find((c) => c.type === Ready);
  const events: DecidedEvent[] =
    before?.message === ready.message ? [] : [{ type: 'Warning', reason, action: 'WriteBack', note: ready.message }];
  return { status, events };
}

/** The status of a spec the schema let through but that cannot work: Stalled until it is edited. */
export function decideInvalid(wb: GitWriteBack, problems: readonly SpecProblem[], now: Date): WriteBackDecision {
  const status = base(wb);
  const message = problems
    .map((p) => `${p.field}: ${p.message}`)
    .join('; ')
    .slice(0, 2000);
  const ready = condition(wb, Ready, 'False', 'InvalidSpec', message);
  status.conditions = applyConditions(
    wb.status?.conditions,
    [ready, condition(wb, Stalled, 'True', 'InvalidSpec', message), { remove: Reconciling }],
    now,
  );
  const before = wb.status?.conditions?.find((c) => c.type === Ready);
  const events: DecidedEvent[] =
    before?.message === message
      ? []
      : [{ type: 'Warning', reason: 'InvalidSpec', action: 'Validate', note: message.slice(0, 1024) }];
  return { status, events };
}

/** The status while waiting for more changes to batch. */
export function decideBatching(wb: GitWriteBack, pending: number, waitMs: number, now: Date): WriteBackDecision {
  const status = base(wb);
  const ready = condition(
    wb,
    Ready,
    'Unknown',
    WriteBackReasons.Batching,
    `${pending} policies changed; committing in ${Math.ceil(waitMs / 1000)}s unless more arrive`,
  );
  status.conditions = applyConditions(
    wb.status?.conditions,
    [ready, condition(wb, Reconciling, 'True', WriteBackReasons.Batching, ready.message)],
    now,
  );
  return { status, events: [] };
}

/** The intent recorded before a push. */
export function withIntent(
  status: Status,
  intent: { changeId: string; baseCommit: string },
  targets: readonly WriteTarget[],
  changed: ReadonlySet<string>,
  now: Date,
): Status {
  return {
    ...status,
    pending: {
      changeID: intent.changeId,
      baseCommit: intent.baseCommit,
      since: timestamp(now),
      policies: targets
        .filter((t) => changed.has(`${t.policy.namespace}/${t.policy.name}`))
        .map((t) => ({ name: t.policy.name, digest: t.digest, ...(t.tag ? { tag: t.tag } : {}) })),
    },
  };
}
