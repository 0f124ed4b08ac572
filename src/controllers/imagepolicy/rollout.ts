// The rollout decision of an ImagePolicy, as a pure function: for every selected workload
// container, what state it is in and whether to pin it (roll out, or roll back), given the
// accepted digest, what the workloads' specs say, what their pods run and how their rollouts
// stand. The reconciler gathers, calls this, and applies the pins it returns.
//
// Rules:
//   - a container whose spec already names repo@desired is followed: UpToDate once the
//     rollout is complete and every running pod reports the digest; Failed past
//     rollout.progressDeadline or when the controller gives up — then, with
//     rollbackOnFailure, pinned back to its previous image, and the digest is remembered in
//     status.failedDigest so that it is not tried again until a newer one is accepted or a
//     reconcile is requested;
//   - otherwise it is pinned when allowed: not the failed digest, approved in Manual mode,
//     not GitOps mode, inside the window, and within rollout.maxConcurrent workloads rolling;
//   - a container pinned by Patchline whose image another field manager set back is pinned
//     again once; a second time, Patchline stops fighting (Blocked, naming the manager).
import type { ImagePolicy, ImagePolicyStatus } from '../../api/v1alpha1/index.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { timestamp } from '../../runtime/conditions.ts';
import { shortDigest } from '../../registry/reference.ts';
import type { RolloutProgress } from '../../rollout/progress.ts';
import type { RunningContainer } from '../../rollout/running.ts';
import { digestOfImageID } from '../../rollout/running.ts';
import { FIELD_MANAGER } from '../../rollout/pin.ts';
import type { DecidedEvent } from '../lifecycle.ts';

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
}

const keyOf = (c: { kind: string; name: string; container?: string }): string =>
  `${c.kind}/${c.name}${c.container !== undefined ? `/${c.container}` : ''}`;

export function decideRollout(input: RolloutInput): RolloutDecision {
  const { policy, now, accepted } = input;
  const rollout = policy.spec.rollout ?? {};
  const mode = rollout.mode ?? 'Auto';
  const maxConcurrent = rollout.maxConcurrent ?? 5;
  const deadlineMs = parseDuration(rollout.progressDeadline ?? '10m');
  const rollbackOnFailure = rollout.rollbackOnFailure !== false;
  const previous = new Map((policy.status?.workloads ?? []).map((w) => [keyOf(w), w]));
  const approved = policy.metadata?.annotations?.[APPROVE_DIGEST_ANNOTATION];
  let failedDigest = input.retryRequested ? undefined : policy.status?.failedDigest;
  if (failedDigest && accepted && failedDigest !== accepted.digest) failedDigest = undefined; // a newer digest
  const desiredImage = accepted ? `${accepted.repository}@${accepted.digest}` : undefined;
  const events: DecidedEvent[] = [];
  const pins: PinAction[] = [];
  const out: WorkloadStatus[] = [];
  let requeue: number | undefined;
  const wake = (ms: number): void => {
    requeue = Math.min(requeue ?? Infinity, Math.max(1_000, ms));
  };

  // Workloads rolling now (a container pinned and not yet up to date) hold a slot.
  const rollingWorkloads = new Set<string>();
  const sorted = [...input.observed].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  let upToDate = 0;

  // First pass: containers already pinned to the desired image.
  const pending: ObservedContainer[] = [];
  for (const o of sorted) {
    const prev = previous.get(keyOf(o));
    const running = o.running?.digests ?? [];
    const runningDigest = running.length === 1 && (o.running?.unknown ?? 0) === 0 ? running[0]!.digest : undefined;
    const base: WorkloadStatus = { kind: o.kind, name: o.name, container: o.container };
    if (runningDigest) base.runningDigest = runningDigest;
    if (accepted) base.desiredDigest = accepted.digest;
    if (prev?.previousDigest) base.previousDigest = prev.previousDigest;
    if (prev?.reverts) base.reverts = prev.reverts;
    if (prev?.revertedBy) base.revertedBy = prev.revertedBy;
    const set = (state: WorkloadStatus['state'], message: string): WorkloadStatus => {
      const w: WorkloadStatus = { ...base, state, message: message.slice(0, 1024) };
      w.since = prev?.state === state && prev?.since ? prev.since : timestamp(now);
      return w;
    };
    if (!accepted || !desiredImage) {
      out.push(input.heldBack ? set('Blocked', input.heldBack) : set('Pending', 'no accepted digest yet'));
      continue;
    }
    if (o.specImage !== desiredImage) {
      pending.push(o);
      continue;
    }
    const allOnDesired = runningDigest === accepted.digest && running[0]!.ready === running[0]!.pods;
    if (o.progress.state === 'Complete' && allOnDesired) {
      upToDate++;
      if (prev?.state === 'Rolling') {
        events.push({
          type: 'Normal',
          reason: 'RolledOut',
          action: 'Rollout',
          note: `${keyOf(o)} runs ${shortDigest(accepted.digest)} on every pod`,
          details: { workload: `${o.kind}/${o.name}`, container: o.container, digest: accepted.digest },
        });
      }
      out.push(set('UpToDate', `runs ${shortDigest(accepted.digest)}`));
      continue;
    }
    const since = prev?.state === 'Rolling' && prev.since ? Date.parse(prev.since) : now.getTime();
    const overdue = now.getTime() - since > deadlineMs;
    if (o.progress.state === 'Failed' || overdue) {
      const why =
        o.progress.state === 'Failed'
          ? o.progress.message
          : `not every pod runs ${shortDigest(accepted.digest)} after ${rollout.progressDeadline ?? '10m'} (${o.progress.message})`;
      failedDigest = accepted.digest;
      const back = prev?.previousDigest;
      if (rollbackOnFailure && back) {
        pins.push({
          kind: o.kind,
          name: o.name,
          container: o.container,
          image: `${accepted.repository}@${back}`,
          previousImage: o.specImage,
          rollback: true,
        });
        events.push({
          type: 'Warning',
          reason: 'RolledBack',
          action: 'Rollout',
          note: `${keyOf(o)}: rollout of ${shortDigest(accepted.digest)} failed (${why}); rolled back to ${shortDigest(back)}`,
          details: {
            workload: `${o.kind}/${o.name}`,
            container: o.container,
            failedDigest: accepted.digest,
            digest: back,
            why,
          },
        });
        out.push(set('Failed', `rollout failed: ${why}; rolled back to ${shortDigest(back)}`));
      } else {
        events.push({
          type: 'Warning',
          reason: 'RolloutFailed',
          action: 'Rollout',
          note: `${keyOf(o)}: rollout of ${shortDigest(accepted.digest)} failed (${why})`,
          details: { workload: `${o.kind}/${o.name}`, container: o.container, failedDigest: accepted.digest, why },
        });
        out.push(set('Failed', `rollout failed: ${why}`));
      }
      continue;
    }
    rollingWorkloads.add(keyOf({ kind: o.kind, name: o.name }));
    out.push(set('Rolling', o.progress.message));
    wake(Math.min(10_000, since + deadlineMs - now.getTime()));
  }

  // Second pass: containers to pin, in a stable order, within the concurrency limit.
  for (const o of pending) {
    const prev = previous.get(keyOf(o));
    const base: WorkloadStatus = {
      kind: o.kind,
      name: o.name,
      container: o.container,
      desiredDigest: accepted!.digest,
    };
    const running = o.running?.digests ?? [];
    if (running.length === 1 && (o.running?.unknown ?? 0) === 0) base.runningDigest = running[0]!.digest;
    if (prev?.previousDigest) base.previousDigest = prev.previousDigest;
    let reverts = prev?.reverts ?? 0;
    let revertedBy = prev?.revertedBy;
    const set = (state: WorkloadStatus['state'], message: string): WorkloadStatus => {
      const w: WorkloadStatus = { ...base, state, message: message.slice(0, 1024) };
      if (reverts) w.reverts = reverts;
      if (revertedBy) w.revertedBy = revertedBy;
      w.since = prev?.state === state && prev?.since ? prev.since : timestamp(now);
      return w;
    };
    // Pinned to this digest by Patchline (the object carries the pin), and the image set
    // back by another manager since?
    if (
      o.pinnedImage === desiredImage &&
      o.imageOwner &&
      o.imageOwner !== FIELD_MANAGER &&
      (o.pinnedReverts ?? 0) === reverts
    ) {
      reverts++;
      revertedBy = o.imageOwner;
      events.push({
        type: 'Warning',
        reason: 'ImageReverted',
        action: 'Rollout',
        note: `${keyOf(o)}: ${o.imageOwner} set the image back to ${o.specImage} (${reverts} time(s))`,
        details: { workload: `${o.kind}/${o.name}`, container: o.container, image: o.specImage, manager: o.imageOwner },
      });
    }
    if (reverts >= MAX_REVERTS && revertedBy) {
      out.push(
        set(
          'Blocked',
          `${revertedBy} keeps setting the image back; Patchline stopped re-pinning it. Let ${revertedBy} ignore the field owned by the "${FIELD_MANAGER}" field manager (docs: GitOps coexistence), then request a reconcile`,
        ),
      );
      continue;
    }
    if (failedDigest === accepted!.digest) {
      // The workload that failed stays Failed (with its message); the others are held back.
      if (prev?.state === 'Failed') out.push(set('Failed', prev.message ?? 'rollout failed'));
      else
        out.push(
          set(
            'Blocked',
            `the rollout of ${shortDigest(accepted!.digest)} failed elsewhere; waiting for a newer digest or a requested reconcile`,
          ),
        );
      continue;
    }
    if (mode === 'GitOps') {
      out.push(set('Pending', 'GitOps mode: the digest is to be written back to git, which is not configured yet'));
      continue;
    }
    if (mode === 'Manual' && approved !== accepted!.digest) {
      out.push(
        set(
          'PendingApproval',
          `annotate the ImagePolicy with ${APPROVE_DIGEST_ANNOTATION}=${accepted!.digest} to roll it out`,
        ),
      );
      continue;
    }
    if (!input.windowOpen) {
      out.push(set('Pending', 'waiting for the rollout window'));
      continue;
    }
    const workload = keyOf({ kind: o.kind, name: o.name });
    if (!rollingWorkloads.has(workload) && rollingWorkloads.size >= maxConcurrent) {
      out.push(set('Pending', `waiting: ${rollingWorkloads.size} workloads rolling (maxConcurrent ${maxConcurrent})`));
      continue;
    }
    rollingWorkloads.add(workload);
    const from = digestOfImageID(o.specImage) ?? base.runningDigest; // repo@sha256:… reads like an imageID
    if (from && from !== accepted!.digest) base.previousDigest = from;
    pins.push({
      kind: o.kind,
      name: o.name,
      container: o.container,
      image: desiredImage!,
      previousImage: o.specImage,
      rollback: false,
      ...(reverts ? { reverts } : {}),
    });
    events.push({
      type: 'Normal',
      reason: 'RolloutStarted',
      action: 'Rollout',
      note: `${keyOf(o)}: ${o.specImage} → ${shortDigest(accepted!.digest)}`,
      details: {
        workload: `${o.kind}/${o.name}`,
        container: o.container,
        digest: accepted!.digest,
        previousImage: o.specImage,
      },
    });
    out.push(set('Rolling', `pinned to ${shortDigest(accepted!.digest)}`));
    wake(5_000);
  }

  out.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const decision: RolloutDecision = {
    workloads: out,
    pins,
    events,
    upToDate: { count: upToDate, of: input.observed.length },
    rolling: rollingWorkloads.size,
  };
  if (failedDigest) decision.failedDigest = failedDigest;
  if (requeue !== undefined && Number.isFinite(requeue)) decision.requeueAfterMs = requeue;
  return decision;
}
