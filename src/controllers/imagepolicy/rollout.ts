// The rollout decision of an ImagePolicy, as a pure function: for every selected workload
// container, what state it is in and whether to pin it (roll out, or roll back), given the
// accepted digest, what the workloads' specs say, what their pods run and how their rollouts
// stand. The reconciler gathers, calls this, and applies the pins it returns.
//
// Each container runs through named steps (../steps.ts), one rule each:
//   - a container whose spec already names repo@desired (in GitOps mode: any reference with
//     the desired digest, as the GitOps engine applied it) is followed (FOLLOW_PINNED):
//     stayFailed — a failed rollout being undone stays Failed;
//     completeRollout — UpToDate once the rollout is complete and every running pod reports
//     the digest; failRollout — Failed past rollout.progressDeadline or when the controller
//     gives up, then, with rollbackOnFailure, pinned back to its previous image, and the
//     digest remembered in status.failedDigest so that it is not tried again until a newer
//     one is accepted or a reconcile is requested (GitOps mode: reverted in git instead; Manual
//     mode: only once the previous digest is approved); keepRolling — otherwise;
//   - otherwise it is pinned when allowed (PIN_WHEN_ALLOWED): countRevert and stopRevertLoop
//     — a container pinned by Patchline whose image another field manager set back is pinned
//     again once, and a second time Patchline stops fighting (Blocked, naming the manager);
//     holdFailedDigest — not the failed digest; waitForApproval — approved in Manual mode;
//     waitForWindow — inside the window; followGit — GitOps mode never pins: the digest is
//     written to git and the container is Rolling once the commit is pushed; waitForSlot —
//     within rollout.maxConcurrent workloads rolling; then pin.
import type { ImagePolicy, ImagePolicyStatus } from '../../api/v1alpha1/index.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { timestamp } from '../../runtime/conditions.ts';
import { shortDigest } from '../../registry/reference.ts';
import type { RolloutProgress } from '../../rollout/progress.ts';
import type { RunningContainer } from '../../rollout/running.ts';
import { digestOfImageID } from '../../rollout/running.ts';
import { FIELD_MANAGER } from '../../rollout/pin.ts';
import type { DecidedEvent } from '../lifecycle.ts';
import { runSteps, type Step, type StepOutcome } from '../steps.ts';

export type WorkloadStatus = NonNullable<ImagePolicyStatus['workloads']>[number];
type Kind = WorkloadStatus['kind'];

const APPROVE_DIGEST_ANNOTATION = 'patchline.dev/approve-digest';
const MAX_REVERTS = 2;

export interface ObservedContainer {
  kind: Kind;
  name: string;
  container: string;
  /** The container's image in the workload spec now. */
  specImage: string;
  running?: RunningContainer;
  progress: RolloutProgress;
  /** The field manager that owns the container's image field (managedFields). */
  imageOwner?: string;
  /**
   * The image Patchline's pin annotation on this object names: proof that this copy of the
   * object saw Patchline's pin (a stale cached copy from before the pin does not).
   */
  pinnedImage?: string;
  /**
   * The revert count Patchline's pin annotation carries: the pin it wrote after counting that
   * many reverts. A revert is counted only on a copy that saw the latest pin (the count in
   * the annotation equals the count in status), so a stale copy and an already counted
   * revert are not counted again.
   */
  pinnedReverts?: number;
  /** verify.runAsNonRoot: who it runs as and where that comes from ("uid 65532 (image)"). */
  user?: string;
  /** When the image it runs was built (its config's created time), when known. */
  builtAt?: string;
}

export interface RolloutInput {
  policy: ImagePolicy;
  now: Date;
  /** The accepted candidate: the repository (no tag) and its digest. */
  accepted?: { repository: string; digest: string };
  observed: ObservedContainer[];
  windowOpen: boolean;
  /** A reconcile was requested since the last one handled: retry a failed digest. */
  retryRequested: boolean;
  /** Why the newest candidate is not accepted (a check failed): every container is held where it is. */
  heldBack?: string;
  /** GitOps mode: the GitWriteBack, and what it says git holds for this policy. */
  gitOps?: GitOpsRecord;
}

/** What the GitWriteBack of a GitOps policy reports for it. */
export interface GitOpsRecord {
  writeBack: string;
  written?: { digest?: string; commit?: string; committedAt?: string; message?: string; pullRequest?: string };
}

export interface PinAction {
  kind: Kind;
  name: string;
  container: string;
  image: string;
  previousImage: string;
  rollback: boolean;
  /** Reverts counted so far, written into the pin annotation. */
  reverts?: number;
}

export interface RolloutDecision {
  workloads: WorkloadStatus[];
  pins: PinAction[];
  failedDigest?: string;
  events: DecidedEvent[];
  /** Containers running the desired digest, of all selected. */
  upToDate: { count: number; of: number };
  rolling: number;
  requeueAfterMs?: number;
  /** GitOps mode: a failed rollout to undo in git, back to this digest. */
  revertTo?: string;
}

const keyOf = (c: { kind: string; name: string; container?: string }): string =>
  `${c.kind}/${c.name}${c.container !== undefined ? `/${c.container}` : ''}`;
const byKey = (a: { kind: string; name: string; container?: string }, b: typeof a): number =>
  keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0;

/** The rollout being decided: the settings, and what the containers decided so far. */
export interface RolloutDraft {
  readonly input: RolloutInput;
  readonly now: Date;
  readonly mode: string;
  readonly maxConcurrent: number;
  readonly deadlineMs: number;
  readonly rollbackOnFailure: boolean;
  readonly previous: ReadonlyMap<string, WorkloadStatus>;
  /** The digest a Manual policy's annotation approves. */
  readonly approved: string | undefined;
  /** Given only while there is an accepted digest (the per-container steps run only then). */
  readonly accepted: { repository: string; digest: string };
  readonly desiredImage: string;
  failedDigest: string | undefined;
  /** GitOps mode: the digest to write back to git to undo a failed rollout. */
  revertTo?: string;
  /** Workloads rolling now (a container pinned and not yet up to date): each holds a slot. */
  readonly rolling: Set<string>;
  upToDate: number;
  readonly workloads: WorkloadStatus[];
  readonly pins: PinAction[];
  readonly events: DecidedEvent[];
  requeueAfterMs?: number;
}

/** One container being decided: its status so far, and the reverts counted on it. */
export interface ContainerDraft {
  readonly rollout: RolloutDraft;
  readonly observed: ObservedContainer;
  readonly prev: WorkloadStatus | undefined;
  readonly status: WorkloadStatus;
  reverts: number;
  revertedBy: string | undefined;
}

type ContainerStep = Step<ContainerDraft>;

function wake(d: RolloutDraft, ms: number): void {
  d.requeueAfterMs = Math.min(d.requeueAfterMs ?? Infinity, Math.max(1_000, ms));
}

/** The one digest every running pod of the container reports; undefined when mixed or unknown. */
function runningDigestOf(o: ObservedContainer): string | undefined {
  const running = o.running?.digests ?? [];
  return running.length === 1 && (o.running?.unknown ?? 0) === 0 ? running[0]!.digest : undefined;
}

/** A container's status before its state is known: identity, digests, reverts so far. */
function containerStatus(o: ObservedContainer, prev: WorkloadStatus | undefined, desired?: string): WorkloadStatus {
  const status: WorkloadStatus = { kind: o.kind, name: o.name, container: o.container };
  const running = runningDigestOf(o);
  if (running) status.runningDigest = running;
  if (desired) status.desiredDigest = desired;
  if (prev?.previousDigest) status.previousDigest = prev.previousDigest;
  if (o.user) status.user = o.user;
  if (running && o.builtAt) status.builtAt = o.builtAt;
  return status;
}

/** The container's status in `state`; `since` is kept while the state does not change. */
function withState(
  status: WorkloadStatus,
  prev: WorkloadStatus | undefined,
  now: Date,
  state: WorkloadStatus['state'],
  message: string,
  reverts: { count: number; by: string | undefined },
): WorkloadStatus {
  const w: WorkloadStatus = { ...status, state, message: message.slice(0, 1024) };
  if (reverts.count) w.reverts = reverts.count;
  if (reverts.by) w.revertedBy = reverts.by;
  w.since = prev?.state === state && prev?.since ? prev.since : timestamp(now);
  return w;
}

/** Records the container's state: the step that calls it settles the container. */
function settle(c: ContainerDraft, state: WorkloadStatus['state'], message: string): StepOutcome {
  const reverts = { count: c.reverts, by: c.revertedBy };
  const w = withState(c.status, c.prev, c.rollout.now, state, message, reverts);
  const commit = committed(c.rollout);
  if (commit && (state === 'Rolling' || state === 'UpToDate')) w.commit = commit.sha;
  c.rollout.workloads.push(w);
  return 'done';
}

/** GitOps mode: the commit that carries the accepted digest, once the GitWriteBack pushed it. */
function committed(d: RolloutDraft): { sha: string; at: number } | undefined {
  const written = d.input.gitOps?.written;
  if (d.mode !== 'GitOps' || !written?.commit || written.digest !== d.accepted.digest) return undefined;
  const at = Date.parse(written.committedAt ?? '');
  return { sha: written.commit, at: Number.isFinite(at) ? at : d.now.getTime() };
}

// Containers whose spec already names the desired image: followed until every pod runs it.

/**
 * A rollout that failed stays Failed while it is being undone: in GitOps mode the container
 * still runs the failed digest until the GitOps engine applies the revert commit.
 */
export const stayFailed: ContainerStep = (c) => {
  const d = c.rollout;
  if (d.failedDigest !== d.accepted.digest || c.prev?.state !== 'Failed') return 'next';
  return settle(c, 'Failed', c.prev.message ?? 'rollout failed');
};

/** Complete, and every pod runs the digest: up to date (an Event when it was rolling). */
export const completeRollout: ContainerStep = (c) => {
  const { observed: o, rollout: d } = c;
  const running = o.running?.digests ?? [];
  const allOnDesired = runningDigestOf(o) === d.accepted.digest && running[0]!.ready === running[0]!.pods;
  if (o.progress.state !== 'Complete' || !allOnDesired) return 'next';
  d.upToDate++;
  if (c.prev?.state === 'Rolling') {
    d.events.push({
      type: 'Normal',
      reason: 'RolledOut',
      action: 'Rollout',
      note: `${keyOf(o)} runs ${shortDigest(d.accepted.digest)} on every pod`,
      details: { workload: `${o.kind}/${o.name}`, container: o.container, digest: d.accepted.digest },
    });
  }
  return settle(c, 'UpToDate', `runs ${shortDigest(d.accepted.digest)}`);
};

/**
 * When the container started rolling to the digest (now, when it just did); in GitOps mode,
 * when the commit was pushed: the GitOps engine's delay counts against the deadline.
 */
const rollingSince = (c: ContainerDraft): number => {
  const commit = committed(c.rollout);
  if (commit) return commit.at;
  return c.prev?.state === 'Rolling' && c.prev.since ? Date.parse(c.prev.since) : c.rollout.now.getTime();
};

/**
 * Failed (the controller gave up, or past rollout.progressDeadline): rolled back to the
 * previous digest with rollbackOnFailure, and the digest remembered as failed.
 */
export const failRollout: ContainerStep = (c) => {
  const { observed: o, rollout: d } = c;
  const overdue = d.now.getTime() - rollingSince(c) > d.deadlineMs;
  if (o.progress.state !== 'Failed' && !overdue) return 'next';
  const digest = d.accepted.digest;
  const why =
    o.progress.state === 'Failed'
      ? o.progress.message
      : `not every pod runs ${shortDigest(digest)} after ${d.input.policy.spec.rollout?.progressDeadline ?? '10m'} (${o.progress.message})`;
  d.failedDigest = digest;
  const workload = `${o.kind}/${o.name}`;
  const back = c.prev?.previousDigest;
  if (d.rollbackOnFailure && back && d.mode === 'GitOps') return revertInGit(c, why, back);
  if (d.rollbackOnFailure && back && d.mode === 'Manual' && d.approved !== back) {
    d.events.push({
      type: 'Warning',
      reason: 'RolloutFailed',
      action: 'Rollout',
      note: `${keyOf(o)}: rollout of ${shortDigest(digest)} failed (${why}); approve ${shortDigest(back)} to roll back`,
      details: { workload, container: o.container, failedDigest: digest, why },
    });
    return settle(
      c,
      'Failed',
      `rollout failed: ${why}; annotate the ImagePolicy with ${APPROVE_DIGEST_ANNOTATION}=${back} to roll back (Manual mode)`,
    );
  }
  if (!d.rollbackOnFailure || !back) {
    d.events.push({
      type: 'Warning',
      reason: 'RolloutFailed',
      action: 'Rollout',
      note: `${keyOf(o)}: rollout of ${shortDigest(digest)} failed (${why})`,
      details: { workload, container: o.container, failedDigest: digest, why },
    });
    return settle(c, 'Failed', `rollout failed: ${why}`);
  }
  d.pins.push({
    kind: o.kind,
    name: o.name,
    container: o.container,
    image: `${d.accepted.repository}@${back}`,
    previousImage: o.specImage,
    rollback: true,
  });
  d.events.push({
    type: 'Warning',
    reason: 'RolledBack',
    action: 'Rollout',
    note: `${keyOf(o)}: rollout of ${shortDigest(digest)} failed (${why}); rolled back to ${shortDigest(back)}`,
    details: { workload, container: o.container, failedDigest: digest, digest: back, why },
  });
  return settle(c, 'Failed', `rollout failed: ${why}; rolled back to ${shortDigest(back)}`);
};

/** GitOps mode: the failed rollout is undone by writing the previous digest to git, never by a pin. */
function revertInGit(c: ContainerDraft, why: string, back: string): StepOutcome {
  const { observed: o, rollout: d } = c;
  d.revertTo = back;
  d.events.push({
    type: 'Warning',
    reason: 'RolledBack',
    action: 'Rollout',
    note: `${keyOf(o)}: rollout of ${shortDigest(d.accepted.digest)} failed (${why}); reverting to ${shortDigest(back)} in git`,
    details: {
      workload: `${o.kind}/${o.name}`,
      container: o.container,
      failedDigest: d.accepted.digest,
      digest: back,
      why,
    },
  });
  return settle(c, 'Failed', `rollout failed: ${why}; reverting to ${shortDigest(back)} in git`);
}

/** Still rolling: holds a slot, looked at again within 10 s or at the deadline. */
export const keepRolling: ContainerStep = (c) => {
  const { observed: o, rollout: d } = c;
  d.rolling.add(keyOf({ kind: o.kind, name: o.name }));
  wake(d, Math.min(10_000, rollingSince(c) + d.deadlineMs - d.now.getTime()));
  return settle(c, 'Rolling', o.progress.message);
};

const FOLLOW_PINNED: readonly ContainerStep[] = [stayFailed, completeRollout, failRollout, keepRolling];

// Containers not on the desired image yet: pinned when every rule allows it.

/** Pinned to this digest by Patchline (the object carries the pin), and set back by another manager since. */
export const countRevert: ContainerStep = (c) => {
  const { observed: o, rollout: d } = c;
  if (d.mode === 'GitOps') return 'next'; // the GitOps engine owns the field: its writes are the rollout
  if (
    o.pinnedImage === d.desiredImage &&
    o.imageOwner &&
    o.imageOwner !== FIELD_MANAGER &&
    (o.pinnedReverts ?? 0) === c.reverts
  ) {
    c.reverts++;
    c.revertedBy = o.imageOwner;
    d.events.push({
      type: 'Warning',
      reason: 'ImageReverted',
      action: 'Rollout',
      note: `${keyOf(o)}: ${o.imageOwner} set the image back to ${o.specImage} (${c.reverts} time(s))`,
      details: { workload: `${o.kind}/${o.name}`, container: o.container, image: o.specImage, manager: o.imageOwner },
    });
  }
  return 'next';
};

/** Set back a second time: Patchline stops fighting the other manager. */
export const stopRevertLoop: ContainerStep = (c) => {
  if (c.reverts < MAX_REVERTS || !c.revertedBy) return 'next';
  const by = c.revertedBy;
  return settle(
    c,
    'Blocked',
    `${by} keeps setting the image back; Patchline stopped re-pinning it. Let ${by} ignore the field owned by the "${FIELD_MANAGER}" field manager (docs: GitOps coexistence), then request a reconcile`,
  );
};

/** The digest failed: the workload that failed stays Failed (with its message); the others are held back. */
export const holdFailedDigest: ContainerStep = (c) => {
  const d = c.rollout;
  if (d.failedDigest !== d.accepted.digest) return 'next';
  if (c.prev?.state === 'Failed') return settle(c, 'Failed', c.prev.message ?? 'rollout failed');
  return settle(
    c,
    'Blocked',
    `the rollout of ${shortDigest(d.accepted.digest)} failed elsewhere; waiting for a newer digest or a requested reconcile`,
  );
};

export const waitForApproval: ContainerStep = (c) => {
  const d = c.rollout;
  if (d.mode !== 'Manual' || d.approved === d.accepted.digest) return 'next';
  return settle(
    c,
    'PendingApproval',
    `annotate the ImagePolicy with ${APPROVE_DIGEST_ANNOTATION}=${d.accepted.digest} to roll it out`,
  );
};

export const waitForWindow: ContainerStep = (c) =>
  c.rollout.input.windowOpen ? 'next' : settle(c, 'Pending', 'waiting for the rollout window');

/**
 * GitOps mode never pins: the policy asks its GitWriteBack to write the digest; the container
 * is Pending until the commit is pushed, then Rolling until the GitOps engine has applied it
 * (past the deadline counted from the commit, the rollout failed and is reverted in git).
 */
export const followGit: ContainerStep = (c) => {
  const d = c.rollout;
  if (d.mode !== 'GitOps') return 'next';
  const writeBack = d.input.gitOps?.writeBack ?? '';
  const commit = committed(d);
  const digest = shortDigest(d.accepted.digest);
  if (!commit) {
    const said = d.input.gitOps?.written?.message;
    wake(d, 30_000);
    return settle(
      c,
      'Pending',
      `GitOps mode: writing ${digest} to git through GitWriteBack ${writeBack}${said ? ` (${said})` : ''}`,
    );
  }
  if (d.now.getTime() - commit.at > d.deadlineMs) {
    d.failedDigest = d.accepted.digest;
    const why = `the GitOps engine did not apply ${commit.sha.slice(0, 12)} within ${d.input.policy.spec.rollout?.progressDeadline ?? '10m'}`;
    const back = c.prev?.previousDigest ?? c.status.runningDigest;
    if (d.rollbackOnFailure && back && back !== d.accepted.digest) return revertInGit(c, why, back);
    return settle(c, 'Failed', `rollout failed: ${why}`);
  }
  const from = c.status.runningDigest;
  if (from && from !== d.accepted.digest) c.status.previousDigest = from;
  d.rolling.add(keyOf({ kind: c.observed.kind, name: c.observed.name }));
  wake(d, Math.min(10_000, commit.at + d.deadlineMs - d.now.getTime()));
  return settle(c, 'Rolling', `committed ${commit.sha.slice(0, 12)}; waiting for the GitOps engine to apply ${digest}`);
};

/** At most rollout.maxConcurrent workloads roll at once (a workload already rolling may pin more containers). */
export const waitForSlot: ContainerStep = (c) => {
  const d = c.rollout;
  const workload = keyOf({ kind: c.observed.kind, name: c.observed.name });
  if (d.rolling.has(workload) || d.rolling.size < d.maxConcurrent) return 'next';
  return settle(c, 'Pending', `waiting: ${d.rolling.size} workloads rolling (maxConcurrent ${d.maxConcurrent})`);
};

/** Pins the container to the digest, remembering what it ran as the rollback target. */
export const pin: ContainerStep = (c) => {
  const { observed: o, rollout: d } = c;
  const digest = d.accepted.digest;
  d.rolling.add(keyOf({ kind: o.kind, name: o.name }));
  const from = digestOfImageID(o.specImage) ?? c.status.runningDigest; // repo@sha256:… reads like an imageID
  if (from && from !== digest) c.status.previousDigest = from;
  d.pins.push({
    kind: o.kind,
    name: o.name,
    container: o.container,
    image: d.desiredImage,
    previousImage: o.specImage,
    rollback: false,
    ...(c.reverts ? { reverts: c.reverts } : {}),
  });
  // A pin decided before and not applied yet (the API server refused or was away) is tried
  // again, not announced again: one RolloutStarted per container and digest.
  // (Set back by another manager since — a revert — it is a new rollout, and said so.)
  const reverted = c.reverts > (c.prev?.reverts ?? 0);
  const repeated = c.prev?.state === 'Rolling' && c.prev.desiredDigest === digest && !reverted;
  if (!repeated)
    d.events.push({
      type: 'Normal',
      reason: 'RolloutStarted',
      action: 'Rollout',
      note: `${keyOf(o)}: ${o.specImage} → ${shortDigest(digest)}`,
      details: { workload: `${o.kind}/${o.name}`, container: o.container, digest, previousImage: o.specImage },
    });
  wake(d, 5_000);
  return settle(c, 'Rolling', `pinned to ${shortDigest(digest)}`);
};

const PIN_WHEN_ALLOWED: readonly ContainerStep[] = [
  countRevert,
  stopRevertLoop,
  holdFailedDigest,
  waitForApproval,
  waitForWindow,
  followGit,
  waitForSlot,
  pin,
];

export function startRollout(input: RolloutInput, accepted: { repository: string; digest: string }): RolloutDraft {
  const { policy } = input;
  const rollout = policy.spec.rollout ?? {};
  let failedDigest = input.retryRequested ? undefined : policy.status?.failedDigest;
  if (failedDigest && failedDigest !== accepted.digest) failedDigest = undefined; // a newer digest
  return {
    input,
    now: input.now,
    mode: rollout.mode ?? 'Auto',
    maxConcurrent: rollout.maxConcurrent ?? 5,
    deadlineMs: parseDuration(rollout.progressDeadline ?? '10m'),
    rollbackOnFailure: rollout.rollbackOnFailure !== false,
    previous: new Map((policy.status?.workloads ?? []).map((w) => [keyOf(w), w])),
    approved: policy.metadata?.annotations?.[APPROVE_DIGEST_ANNOTATION],
    accepted,
    desiredImage: `${accepted.repository}@${accepted.digest}`,
    failedDigest,
    rolling: new Set(),
    upToDate: 0,
    workloads: [],
    pins: [],
    events: [],
  };
}

export function containerDraft(d: RolloutDraft, o: ObservedContainer): ContainerDraft {
  const prev = d.previous.get(keyOf(o));
  return {
    rollout: d,
    observed: o,
    prev,
    status: containerStatus(o, prev, d.accepted.digest),
    reverts: prev?.reverts ?? 0,
    revertedBy: prev?.revertedBy,
  };
}

/** No accepted digest: every container is held where it is (Blocked when a check refused the newest). */
function holdEverything(input: RolloutInput): RolloutDecision {
  const previous = new Map((input.policy.status?.workloads ?? []).map((w) => [keyOf(w), w]));
  const state: WorkloadStatus['state'] = input.heldBack ? 'Blocked' : 'Pending';
  const message = input.heldBack ?? 'no accepted digest yet';
  const workloads = [...input.observed].sort(byKey).map((o) => {
    const prev = previous.get(keyOf(o));
    const reverts = { count: prev?.reverts ?? 0, by: prev?.revertedBy };
    return withState(containerStatus(o, prev), prev, input.now, state, message, reverts);
  });
  const decision: RolloutDecision = {
    workloads,
    pins: [],
    events: [],
    upToDate: { count: 0, of: input.observed.length },
    rolling: 0,
  };
  if (!input.retryRequested && input.policy.status?.failedDigest)
    decision.failedDigest = input.policy.status.failedDigest;
  return decision;
}

export function decideRollout(input: RolloutInput): RolloutDecision {
  if (!input.accepted) return holdEverything(input);
  const d = startRollout(input, input.accepted);
  const sorted = [...input.observed].sort(byKey);
  // Containers already pinned first: the workloads they keep rolling hold their slots before
  // anything new is pinned. Then the others, in a stable order.
  const onDesired = (o: ObservedContainer): boolean =>
    d.mode === 'GitOps' ? digestOfImageID(o.specImage) === d.accepted.digest : o.specImage === d.desiredImage;
  for (const o of sorted.filter(onDesired)) runSteps(containerDraft(d, o), FOLLOW_PINNED);
  for (const o of sorted.filter((x) => !onDesired(x))) runSteps(containerDraft(d, o), PIN_WHEN_ALLOWED);

  const decision: RolloutDecision = {
    workloads: d.workloads.sort(byKey),
    pins: d.pins,
    events: d.events,
    upToDate: { count: d.upToDate, of: input.observed.length },
    rolling: d.rolling.size,
  };
  if (d.failedDigest) decision.failedDigest = d.failedDigest;
  if (d.revertTo) decision.revertTo = d.revertTo;
  if (d.requeueAfterMs !== undefined && Number.isFinite(d.requeueAfterMs)) decision.requeueAfterMs = d.requeueAfterMs;
  return decision;
}
