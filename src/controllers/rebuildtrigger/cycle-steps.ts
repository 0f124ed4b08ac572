// The steps of the rebuild cycle (cycle.ts runs them in order; see ../steps.ts). Each owns
// one rule of the cycle and records its part of the decision: status, phase, summary, events,
// when to look again.
import type { RebuildTriggerSpec } from '../../api/v1alpha1/index.ts';
import { correlationId } from '../../builders/request.ts';
import { backoffDelay } from '../../runtime/clock.ts';
import { formatDuration, parseDuration } from '../../runtime/duration.ts';
import { shortDigest } from '../../registry/reference.ts';
import type { DecidedEvent } from '../lifecycle.ts';
import type { Step } from '../steps.ts';
import { windowState } from '../window.ts';
import {
  IN_FLIGHT,
  RETRY,
  TERMINAL_FAILED,
  VERIFY_TIMEOUT_MS,
  effective,
  historyEntry,
  iso,
  landedCandidate,
  landedFor,
  ms,
  pollInterval,
  reportsItsEnd,
  REPORTED_BUILD_FALLBACK_MS,
  revisionOf,
  type Action,
  type BaseRecord,
  type Build,
  type CycleDecision,
  type CycleInput,
  type CycleSummary,
  type Phase,
  type Status,
} from './cycle-model.ts';

/** The decision being made: the input, and what the steps so far decided. */
export interface CycleDraft {
  readonly input: CycleInput;
  readonly spec: RebuildTriggerSpec;
  readonly now: Date;
  /** The status to write: a copy of the resource's, changed by the steps. */
  status: Status;
  /** Bases whose followed identity changed in this look. */
  changed: BaseRecord[];
  /** Bases the registry could not tell about, with the reason. */
  baseErrors: string[];
  /** The revision of every base, once every digest is known. */
  revision?: string;
  action: Action;
  phase: Phase;
  summary: CycleSummary;
  events: DecidedEvent[];
  requeueAfterMs?: number;
}

export type CycleStep = Step<CycleDraft>;

export function startCycle(input: CycleInput): CycleDraft {
  return {
    input,
    spec: input.trigger.spec,
    now: input.now,
    status: structuredClone(input.trigger.status ?? {}),
    changed: [],
    baseErrors: [],
    action: { kind: 'none' },
    phase: 'Idle',
    summary: { ready: true, reason: 'Idle', message: '', upToDate: true, building: false, stalled: false },
    events: [],
  };
}

/** Look again at `at` (epoch ms) at the latest, and no sooner than a second from now. */
function wake(draft: CycleDraft, at: number): void {
  const d = Math.max(1_000, at - draft.now.getTime());
  draft.requeueAfterMs = draft.requeueAfterMs === undefined ? d : Math.min(draft.requeueAfterMs, d);
}

function record(draft: CycleDraft, event: DecidedEvent): void {
  draft.events.push(event);
}

/** Summary fields for a cycle that is not up to date. */
function waiting(draft: CycleDraft, phase: Phase, reason: string, message: string): void {
  draft.phase = phase;
  draft.summary.upToDate = false;
  draft.summary.reason = reason;
  draft.summary.message = message;
}

/** Writes the Starting record (the intent, before the provider is called) and asks for the start. */
function startBuild(draft: CycleDraft, revision: string, baseImage: string, baseDigest: string, attempt: number): void {
  const { input, status: s, now } = draft;
  const build = s.build;
  if (build && !IN_FLIGHT.includes(build.phase ?? '')) {
    s.history = [historyEntry(build), ...(s.history ?? [])].slice(0, draft.spec.historyLimit ?? 10);
  }
  const base = s.bases?.find((r) => r.image === baseImage);
  s.build = {
    provider: input.provider,
    phase: 'Starting',
    revision,
    attempt,
    correlationId: correlationId(input.trigger.metadata?.uid ?? '', revision, attempt),
    baseImage,
    baseDigest: base?.digest ?? baseDigest,
    requestedAt: iso(now),
    message: `requesting a ${input.provider} build for ${shortDigest(baseDigest)}${attempt > 1 ? ` (attempt ${attempt})` : ''}`,
    ...(input.target.digest ? { targetDigestBefore: input.target.digest } : {}),
  };
  delete s.pending;
  draft.action = { kind: 'start' };
  draft.phase = 'Building';
}

/** 1. Record what the registry says of each base; a change of a followed identity is a change. */
export const recordBaseDigests: CycleStep = (draft) => {
  const { input, spec, now } = draft;
  const previous = draft.status.bases ?? [];
  const bases: BaseRecord[] = [];
  for (const b of spec.baseImages) {
    const obs = input.bases.find((o) => o.image === b.image);
    const rec: BaseRecord = { ...(previous.find((r) => r.image === b.image) ?? { image: b.image }) };
    if (obs?.error) {
      rec.error = obs.error.slice(0, 1024);
      draft.baseErrors.push(`${b.image}: ${obs.error}`);
    } else delete rec.error;
    if (obs?.checkedAt) rec.checkedAt = iso(obs.checkedAt);
    if (obs?.digest) {
      const before = effective(b.platforms, rec.digest, rec.platformDigests);
      const after = effective(b.platforms, obs.digest, obs.platformDigests);
      if (!rec.digest) {
        rec.changedAt = iso(now); // the baseline: what was there before Patchline looked
      } else if (before !== after) {
        rec.previousDigest = rec.digest;
        rec.changedAt = iso(now);
        draft.changed.push(rec);
      }
      rec.digest = obs.digest;
      rec.shortDigest = shortDigest(obs.digest);
      if (obs.platformDigests && b.platforms?.length) rec.platformDigests = { ...obs.platformDigests };
    }
    bases.push(rec);
  }
  draft.status.bases = bases;
  if (bases.every((r) => r.digest)) draft.revision = revisionOf(input.trigger, bases);
  return 'next';
};

/** 2. A change of revision becomes (or renews) the pending change; settling restarts. */
export const renewPendingChange: CycleStep = (draft) => {
  const { changed, revision, status: s, now } = draft;
  if (changed.length === 0 || !revision) return 'next';
  const settleMs = parseDuration(draft.spec.settle ?? '10m');
  for (const c of changed) {
    record(draft, {
      type: 'Normal',
      reason: 'BaseChanged',
      action: 'Watch',
      note: `${c.image} changed from ${shortDigest(c.previousDigest ?? '')} to ${shortDigest(c.digest ?? '')}${settleMs > 0 ? `; rebuilding once it has been unchanged for ${formatDuration(settleMs)}` : ''}`,
    });
  }
  if (s.build?.revision === revision && !TERMINAL_FAILED.includes(s.build.phase ?? '')) {
    delete s.pending; // back to what is already being built or was built
  } else {
    const first = changed[0]!;
    s.pending = {
      revision,
      baseImage: first.image,
      baseDigest: first.digest!,
      since: iso(now),
      settleUntil: iso(new Date(now.getTime() + settleMs)),
    };
  }
  return 'next';
};

/** 3. A build in flight past its timeout has failed. */
export const timeOutBuild: CycleStep = (draft) => {
  const { status: s, now } = draft;
  const build = s.build;
  if (!build || !IN_FLIGHT.includes(build.phase ?? '') || build.phase === 'Starting') return 'next';
  const timeoutMs = parseDuration(draft.spec.build.timeout ?? '1h');
  const startedAt = ms(build.startedAt ?? build.requestedAt);
  if (Number.isFinite(startedAt) && now.getTime() - startedAt > timeoutMs) {
    s.build = {
      ...build,
      phase: 'Failed',
      finishedAt: iso(now),
      message: `timed out after ${formatDuration(timeoutMs)}`,
    };
    record(draft, {
      type: 'Warning',
      reason: 'BuildTimedOut',
      action: 'Build',
      note: `build ${build.id ?? ''} did not finish within ${formatDuration(timeoutMs)}`,
    });
  }
  return 'next';
};

/** 4. A build in flight is followed before anything else: resolved when Starting, else polled. */
export const followBuildInFlight: CycleStep = (draft) => {
  const build = draft.status.build;
  if (!build || !IN_FLIGHT.includes(build.phase ?? '')) return 'next';
  draft.phase = 'Building';
  draft.summary.building = true;
  draft.summary.upToDate = false;
  draft.summary.reason = 'Building';
  draft.summary.message = `${build.provider ?? draft.input.provider} build ${build.id ?? build.correlationId ?? ''} is ${build.phase}${build.attempt && build.attempt > 1 ? ` (attempt ${build.attempt})` : ''}${build.followError ? `; cannot follow it now: ${build.followError}` : ''}`;
  draft.action = { kind: build.phase === 'Starting' ? 'resolve' : 'poll' };
  return 'done';
};

/** The rebuilt image is in the registry and its provenance judged: it has landed. */
function land(draft: CycleDraft, build: Build, candidate: string): void {
  const { spec, now } = draft;
  const p = draft.input.provenance!.result;
  draft.status.landed = {
    digest: candidate,
    provenance: p.verdict,
    at: iso(now),
    ...(build.revision ? { revision: build.revision } : {}),
    buildId: build.id ?? build.correlationId ?? '',
    ...(p.declared ? { baseDigest: p.declared.digest } : {}),
  };
  const mismatch = p.verdict === 'Mismatch';
  record(draft, {
    type: mismatch ? 'Warning' : 'Normal',
    reason: mismatch ? 'ProvenanceMismatch' : 'Landed',
    action: 'Verify',
    note: `${spec.target.image} is ${shortDigest(candidate)}, rebuilt on ${build.baseImage ?? ''}@${shortDigest(build.baseDigest ?? '')}: provenance ${p.verdict.toLowerCase()} (${p.message})`,
    details: {
      digest: candidate,
      buildId: build.id,
      baseImage: build.baseImage,
      baseDigest: build.baseDigest,
      declaredBaseDigest: p.declared?.digest,
      provenance: p.verdict,
    },
  });
}

/**
 * 5. A Succeeded build waits for the rebuilt image to show in the registry, then its base is
 * judged; one that never shows up fails (and is retried like a failed build).
 */
export const awaitRebuiltImage: CycleStep = (draft) => {
  const { status: s, spec, now } = draft;
  const build = s.build;
  if (!build || build.phase !== 'Succeeded' || landedFor(s, build)) return 'next';
  const candidate = landedCandidate(s, draft.input.target.digest);
  const finished = ms(build.finishedAt);
  if (candidate && draft.input.provenance?.digest === candidate) {
    land(draft, build, candidate);
    return 'next';
  }
  if (Number.isFinite(finished) && now.getTime() - finished > VERIFY_TIMEOUT_MS) {
    // Retried like a failed build, counting the backoff from now.
    const attempt = build.attempt ?? 1;
    const failed: Build = {
      ...build,
      phase: 'Failed',
      message: `the build succeeded but ${spec.target.image} did not change within ${formatDuration(VERIFY_TIMEOUT_MS)}`,
    };
    if (attempt <= (spec.build.retries ?? 2))
      failed.retryAt = iso(new Date(now.getTime() + backoffDelay(attempt - 1, RETRY)));
    s.build = failed;
    record(draft, { type: 'Warning', reason: 'BuildFailed', action: 'Verify', note: failed.message! });
    return 'next';
  }
  waiting(
    draft,
    'Verifying',
    'Verifying',
    `build ${build.id ?? ''} succeeded; waiting for ${spec.target.image} to show the rebuilt image`,
  );
  wake(draft, now.getTime() + 30_000);
  return 'done';
};

const failedBuild = (s: Status): Build | undefined =>
  s.build && TERMINAL_FAILED.includes(s.build.phase ?? '') ? s.build : undefined;

/**
 * 6. Asked to try again: the failed revision becomes pending once more, past its settle
 * period, so that the window and the build queue still apply.
 */
export const retryOnRequest: CycleStep = (draft) => {
  const { status: s, now } = draft;
  const failed = failedBuild(s);
  if (!draft.input.manualRetry || !failed?.revision || s.pending) return 'next';
  s.pending = {
    revision: failed.revision,
    baseImage: failed.baseImage ?? '',
    baseDigest: failed.baseDigest ?? '',
    since: iso(now),
    settleUntil: iso(now),
  };
  record(draft, {
    type: 'Normal',
    reason: 'BuildRetried',
    action: 'Build',
    note: `retrying the failed build of ${shortDigest(failed.baseDigest ?? '')} on request`,
  });
  return 'next';
};

/** Waits for a build slot, keeping the place in the queue the trigger had when it joined. */
function queueForSlot(draft: CycleDraft, readyAt: string): void {
  const { input } = draft;
  const previous = input.trigger.status;
  // The place in the queue as it was when the trigger joined it: rewriting hundreds of
  // statuses each time a slot frees would load the API server for nothing. The live queue
  // is in the metrics (patchline_builds_queued).
  const before = previous?.conditions?.find((c) => c.type === 'Ready');
  const message =
    previous?.phase === 'Queued' && before?.reason === 'Queued'
      ? before.message
      : `waiting for a build slot since ${readyAt} (${input.slot.position ?? '?'} of ${input.slot.waiting ?? '?'} in the queue then; ${input.slot.limit} builds at a time)`;
  waiting(draft, 'Queued', 'Queued', message);
  wake(draft, draft.now.getTime() + 600_000); // the slot manager wakes it when its turn comes; this is a safety net
  if (previous?.phase !== 'Queued')
    record(draft, { type: 'Normal', reason: 'BuildQueued', action: 'Build', note: message });
}

/**
 * 7. A pending change (not the revision built last, or one whose build failed) is built once
 * it has settled, the window is open and a build slot is free.
 */
export const startPendingChange: CycleStep = (draft) => {
  const { status: s, spec, now, input } = draft;
  const pending = s.pending;
  const current = s.build;
  if (!pending || (current && current.revision === pending.revision && !failedBuild(s))) return 'next';
  const settleUntil = ms(pending.settleUntil);
  const win = windowState(spec.window, now);
  if (Number.isFinite(settleUntil) && now.getTime() < settleUntil) {
    waiting(
      draft,
      'Settling',
      'Settling',
      `${pending.baseImage} changed; waiting until ${pending.settleUntil} for it to settle`,
    );
    wake(draft, settleUntil);
  } else if (!win.open) {
    const message = `waiting for the maintenance window opening at ${win.opensAt ? iso(win.opensAt) : '?'}`;
    waiting(draft, 'Waiting', 'WaitingForWindow', message);
    if (win.opensAt) wake(draft, win.opensAt.getTime());
    if (input.trigger.status?.phase !== 'Waiting')
      record(draft, { type: 'Normal', reason: 'WaitingForWindow', action: 'Schedule', note: message });
  } else if (!input.slot.available) {
    pending.readyAt ??= iso(now);
    queueForSlot(draft, pending.readyAt);
  } else {
    // A revision tried before gets the next attempt number, so that its correlation id is new.
    draft.summary.upToDate = false;
    const attempt = current && current.revision === pending.revision ? (current.attempt ?? 1) + 1 : 1;
    startBuild(draft, pending.revision!, pending.baseImage!, pending.baseDigest!, attempt);
  }
  return 'done';
};

/** 8. A failed build is retried with backoff while attempts remain; then the trigger stalls. */
export const retryFailedBuild: CycleStep = (draft) => {
  const { status: s, now, input } = draft;
  const current = failedBuild(s);
  if (!current || landedFor(s, current)) return 'next';
  const retries = draft.spec.build.retries ?? 2;
  const attempt = current.attempt ?? 1;
  if (!current.retryAt && attempt <= retries) {
    const from = ms(current.finishedAt);
    current.retryAt = iso(new Date((Number.isFinite(from) ? from : now.getTime()) + backoffDelay(attempt - 1, RETRY)));
  }
  const retryAt = ms(current.retryAt);
  if (attempt > retries || !Number.isFinite(retryAt)) {
    waiting(
      draft,
      'Failed',
      'BuildFailed',
      `the ${current.provider ?? input.provider} build failed after ${attempt} attempt(s): ${current.message ?? ''}${current.url ? ` (${current.url})` : ''}. Annotate the trigger with patchline.dev/reconcile-requested-at to try again.`,
    );
    draft.summary.ready = false;
    draft.summary.stalled = true;
  } else if (now.getTime() >= retryAt && input.slot.available) {
    startBuild(draft, current.revision!, current.baseImage!, current.baseDigest!, attempt + 1);
  } else {
    waiting(
      draft,
      'Failed',
      'Retrying',
      `build failed (${current.message ?? ''}); attempt ${attempt + 1} of ${retries + 1} at ${current.retryAt}`,
    );
    wake(draft, Math.max(retryAt, now.getTime() + 1_000));
  }
  return 'done';
};

/** 9. Nothing to do: the last build landed, or the bases have not changed. */
export const reportSteadyState: CycleStep = (draft) => {
  const { status: s, spec, summary } = draft;
  if (s.landed && s.build && landedFor(s, s.build)) {
    const mismatch = s.landed.provenance === 'Mismatch';
    draft.phase = 'Landed';
    summary.reason = mismatch ? 'ProvenanceMismatch' : 'Landed';
    summary.ready = !mismatch;
    summary.upToDate = !mismatch;
    summary.message = `${spec.target.image} is ${shortDigest(s.landed.digest ?? '')}, rebuilt on the current bases (provenance ${(s.landed.provenance ?? 'Unknown').toLowerCase()})`;
  } else {
    draft.phase = 'Idle';
    summary.reason = 'Idle';
    summary.message = draft.revision
      ? `following ${spec.baseImages.length} base image(s); no change since ${(s.bases ?? []).map((b) => shortDigest(b.digest ?? '')).join(', ')}`
      : `learning the digests of ${spec.baseImages.map((b) => b.image).join(', ')}`;
  }
  return 'done';
};

/** Whatever the steps decided: unreadable bases make it not Ready; a build in flight is polled. */
export function finishCycle(draft: CycleDraft): CycleDecision {
  const { status: s, summary, now } = draft;
  if (draft.baseErrors.length > 0 && !summary.stalled) {
    summary.ready = false;
    summary.reason = 'RegistryError';
    summary.message = `cannot read base images: ${draft.baseErrors.join('; ')}`.slice(0, 2000);
  }
  if (draft.action.kind === 'poll') {
    const running = now.getTime() - ms(s.build?.startedAt ?? s.build?.requestedAt);
    draft.requeueAfterMs = Math.min(
      draft.requeueAfterMs ?? Infinity,
      reportsItsEnd(draft.spec.build)
        ? REPORTED_BUILD_FALLBACK_MS
        : pollInterval(Number.isFinite(running) ? running : 0),
    );
  }
  s.phase = draft.phase;
  const decision: CycleDecision = { status: s, action: draft.action, events: draft.events, summary };
  if (draft.requeueAfterMs !== undefined && Number.isFinite(draft.requeueAfterMs))
    decision.requeueAfterMs = draft.requeueAfterMs;
  return decision;
}
