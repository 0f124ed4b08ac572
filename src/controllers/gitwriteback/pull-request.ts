// Pull request mode of a GitWriteBack, as pure functions: which digests are declined (their
// pull request was closed without merging), what status says of the open request after a
// push, and what a merged or closed request changes. The reconciler talks to the forge
// (rollout/forge) and git; these decide what it means.
import { ReconcileRequestedAt, type GitWriteBack, type GitWriteBackStatus } from '../../api/v1alpha1/index.ts';
import { timestamp, type ConditionInput } from '../../runtime/conditions.ts';
import { shortDigest } from '../../registry/reference.ts';
import type { PullRequest } from '../../rollout/forge/types.ts';
import type { DecidedEvent } from '../lifecycle.ts';
import type { WriteTarget } from './decide.ts';

type Status = GitWriteBackStatus;
type PolicyEntry = NonNullable<Status['policies']>[number];
type Proposed = NonNullable<NonNullable<Status['pullRequest']>['policies']>[number];

const Declined = 'Declined';

/** What the forge step of a run did: the open request, or why there is none. */
export interface Proposal {
  pullRequest?: PullRequest;
  /** created: opened now; found: it existed (a restart); updated: title or body rewritten. */
  action?: 'created' | 'found' | 'updated' | 'unchanged';
  warnings: string[];
  error?: { message: string; retryable: boolean };
}

const keyOf = (t: WriteTarget): string => `${t.policy.namespace}/${t.policy.name}`;

/** A reconcile was requested since the last one handled: declined digests may be proposed again. */
function reconcileRequested(wb: GitWriteBack): boolean {
  const requested = wb.metadata?.annotations?.[ReconcileRequestedAt];
  return requested !== undefined && requested !== wb.status?.lastHandledReconcileAt;
}

/**
 * The declined digests that still hold: a policy that accepted a newer digest (or is gone)
 * drops its entry, and a requested reconcile clears them all.
 */
export function stillDeclined(wb: GitWriteBack, targets: readonly WriteTarget[]): NonNullable<Status['declined']> {
  if (reconcileRequested(wb)) return [];
  const wanted = new Map(targets.map((t) => [t.policy.name, t.digest]));
  return (wb.status?.declined ?? []).filter((d) => wanted.get(d.name) === d.digest);
}

/** The targets to write: those not declined. */
export function proposable(targets: readonly WriteTarget[], declined: Status['declined']): WriteTarget[] {
  const out = new Map((declined ?? []).map((d) => [d.name, d.digest]));
  return targets.filter((t) => out.get(t.policy.name) !== t.digest);
}

/** Status entries of the declined policies: the digest git does not get, and why. */
export function declinedEntries(policies: Status['policies'], declined: Status['declined']): PolicyEntry[] {
  const byName = new Map((policies ?? []).map((p) => [p.name, p]));
  for (const d of declined ?? []) {
    byName.set(d.name, {
      name: d.name,
      ...(d.digest ? { digest: d.digest } : {}),
      ...(d.tag ? { tag: d.tag } : {}),
      message: `declined: ${d.pullRequest ?? 'its pull request'} was closed without merging; ${shortDigest(d.digest ?? '')} is not proposed again until a newer digest is accepted or a reconcile is requested`,
    });
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The Declined condition: True while some digest is declined. */
export function declinedCondition(wb: GitWriteBack, declined: Status['declined']): ConditionInput | { remove: string } {
  if (!declined?.length) return { remove: Declined };
  const names = declined.map((d) => `${d.name}@${shortDigest(d.digest ?? '')}`).join(', ');
  return {
    type: Declined,
    status: 'True',
    reason: 'PullRequestClosed',
    message: `closed without merging, not proposed again until a newer digest or a reconcile request: ${names}`.slice(
      0,
      2000,
    ),
    observedGeneration: wb.metadata?.generation ?? 0,
  };
}

export interface ProposalRecord {
  /** The Ready condition's reason and message, and whether the write-back is stuck. */
  ready: { status: 'True' | 'False'; reason: string; message: string; stalled: boolean };
  events: DecidedEvent[];
}

/** The proposed policies wait for the merge: no commit yet, the request's page instead. */
function markProposed(
  policies: Status['policies'],
  names: ReadonlySet<string>,
  pr: PullRequest | undefined,
  unopened: string,
): PolicyEntry[] {
  return (policies ?? []).map((entry) => {
    if (!names.has(entry.name)) return entry;
    const { commit: _c, committedAt: _a, pullRequest: _p, ...rest } = entry;
    return pr
      ? {
          ...rest,
          pullRequest: pr.url,
          message: `proposed in pull request #${pr.number}, waiting for review: ${pr.url}`,
        }
      : { ...rest, message: unopened.slice(0, 1024) };
  });
}

/** Opened, updated (a newer change on its branch), or opened without some labels or reviewers. */
function proposalEvents(
  pr: PullRequest,
  proposal: Proposal,
  pushed: { sha: string; branch: string },
  moved: boolean,
  proposed: readonly Proposed[],
): DecidedEvent[] {
  const events: DecidedEvent[] = [];
  const details = { pullRequest: pr.url, commit: pushed.sha, policies: proposed.map((p) => p.name) };
  if (proposal.action === 'created')
    events.push({
      type: 'Normal',
      reason: 'PullRequestOpened',
      action: 'WriteBack',
      note: `opened pull request #${pr.number} from ${pushed.branch}: ${pr.title}`.slice(0, 1024),
      details,
    });
  else if (proposal.action === 'updated' || moved)
    events.push({
      type: 'Normal',
      reason: 'PullRequestUpdated',
      action: 'WriteBack',
      note: `pull request #${pr.number} now proposes ${pushed.sha.slice(0, 12)}: ${pr.title}`.slice(0, 1024),
      details,
    });
  if (proposal.warnings.length > 0)
    events.push({
      type: 'Warning',
      reason: 'PullRequestIncomplete',
      action: 'WriteBack',
      note: `pull request #${pr.number}: ${proposal.warnings.join('; ')}`.slice(0, 1024),
    });
  return events;
}

/**
 * Status after a push (or a push branch found holding the change) in pull request mode: the
 * request and what it proposes; the proposed policies wait for the merge (no commit yet).
 */
export function recordProposal(
  wb: GitWriteBack,
  status: Status,
  pushed: { sha: string; changeId: string; branch: string; policies: ReadonlySet<string> },
  targets: readonly WriteTarget[],
  proposal: Proposal,
  at: string,
): ProposalRecord {
  const proposed: Proposed[] = targets
    .filter((t) => pushed.policies.has(keyOf(t)))
    .map((t) => ({ name: t.policy.name, digest: t.digest, ...(t.tag ? { tag: t.tag } : {}) }));
  const pr = proposal.pullRequest;
  const failure = `pushed ${pushed.sha.slice(0, 12)} to ${pushed.branch}, but the pull request could not be opened: ${proposal.error?.message ?? 'unknown error'}`;
  status.policies = markProposed(status.policies, new Set(proposed.map((p) => p.name)), pr, failure);
  if (!pr) {
    return {
      ready: {
        status: 'False',
        reason: 'PullRequestFailed',
        message: failure,
        stalled: proposal.error?.retryable === false,
      },
      events: [{ type: 'Warning', reason: 'PullRequestFailed', action: 'WriteBack', note: failure.slice(0, 1024) }],
    };
  }
  const previous = wb.status?.pullRequest;
  const same = previous?.number === pr.number && previous.state === 'Open';
  const changed = proposal.action === 'created' || proposal.action === 'updated' || previous?.headCommit !== pushed.sha;
  status.pullRequest = {
    number: pr.number,
    url: pr.url,
    state: 'Open',
    headBranch: pushed.branch,
    headCommit: pushed.sha,
    changeID: pushed.changeId,
    title: pr.title.slice(0, 1024),
    openedAt: same && previous.openedAt ? previous.openedAt : at,
    updatedAt: changed || !previous?.updatedAt ? at : previous.updatedAt,
    policies: proposed,
  };
  return {
    ready: {
      status: 'True',
      reason: 'PullRequestOpen',
      message: `pull request #${pr.number} proposes ${pushed.sha.slice(0, 12)} (${proposed.length} policies), waiting for review: ${pr.url}`,
      stalled: false,
    },
    events: proposalEvents(pr, proposal, pushed, same && previous.headCommit !== pushed.sha, proposed),
  };
}

/** What a merged or closed request changes: commits for the merged policies, or the declined digests. */
export function recordPullRequestEnd(
  wb: GitWriteBack,
  pr: PullRequest,
  now: Date,
): { status: Status; events: DecidedEvent[] } {
  const status: Status = { ...(wb.status ?? {}) };
  const known = wb.status?.pullRequest ?? {};
  const proposed = known.policies ?? [];
  const at = timestamp(now);
  if (pr.state === 'merged') {
    const commit = pr.mergeCommit ?? known.headCommit ?? '';
    const mergedAt = pr.mergedAt ?? at;
    const merged = new Map(proposed.map((p) => [p.name, p]));
    status.policies = (wb.status?.policies ?? []).map((entry) => {
      const p = merged.get(entry.name);
      if (!p || p.digest !== entry.digest) return entry;
      const { message: _m, pullRequest: _p, ...rest } = entry;
      return { ...rest, commit, committedAt: mergedAt };
    });
    status.pullRequest = { ...known, state: 'Merged', mergeCommit: commit, mergedAt };
    const note = `pull request #${pr.number} was merged as ${commit.slice(0, 12)}: ${proposed.length} policies follow the rollout`;
    return {
      status,
      events: [
        {
          type: 'Normal',
          reason: 'PullRequestMerged',
          action: 'WriteBack',
          note,
          details: { pullRequest: pr.url, commit, policies: proposed.map((p) => p.name) },
        },
      ],
    };
  }
  const closedAt = pr.closedAt ?? at;
  const declined = new Map((wb.status?.declined ?? []).map((d) => [d.name, d]));
  for (const p of proposed)
    declined.set(p.name, {
      name: p.name,
      ...(p.digest ? { digest: p.digest } : {}),
      ...(p.tag ? { tag: p.tag } : {}),
      pullRequest: pr.url || `#${pr.number}`,
      at: closedAt,
    });
  status.declined = [...declined.values()].sort((a, b) => a.name.localeCompare(b.name));
  status.policies = declinedEntries(wb.status?.policies, status.declined);
  status.pullRequest = { ...known, state: 'Closed', closedAt };
  const note = `pull request #${pr.number} was closed without merging: ${proposed.map((p) => `${p.name}@${shortDigest(p.digest ?? '')}`).join(', ')} declined until a newer digest or a reconcile request`;
  return {
    status,
    events: [
      {
        type: 'Warning',
        reason: 'PullRequestClosed',
        action: 'WriteBack',
        note: note.slice(0, 1024),
        details: { pullRequest: pr.url, policies: proposed.map((p) => p.name) },
      },
    ],
  };
}
