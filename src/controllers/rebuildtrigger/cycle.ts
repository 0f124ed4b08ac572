// The rebuild cycle of one RebuildTrigger, as a pure function of what was observed.
//
//   base digests ──change──▶ pending ──settled──▶ window open? ──▶ build slot? ──▶ Starting
//        ▲                                                                        │ (intent in status,
//        │                                                                        ▼  then the provider call)
//        └────────── Landed ◀── target changed, provenance judged ◀── Succeeded ◀─ Running
//                                                       Failed ──retry with backoff──┘ … then Stalled
//
// Everything that must survive a restart is in the returned status: the base digests, the
// pending change with its settle deadline, the build (written as Starting before the
// provider is called), the retry time, what landed. The reconciler only gathers, calls
// this, and does the single action it returns.
import { createHash } from 'node:crypto';
import type { RebuildTrigger, RebuildTriggerStatus } from '../../api/v1alpha1/index.ts';
import type { BuildStatus as ProviderBuildStatus, ProviderName } from '../../builders/types.ts';
import { correlationId } from '../../builders/request.ts';
import { backoffDelay } from '../../runtime/clock.ts';
import { timestamp } from '../../runtime/conditions.ts';
import { formatDuration, parseDuration } from '../../runtime/duration.ts';
import { shortDigest } from '../../registry/reference.ts';
import type { ProvenanceResult } from '../../verify/provenance.ts';
import type { DecidedEvent } from '../lifecycle.ts';
import { windowState } from '../window.ts';

type Status = RebuildTriggerStatus;
type Build = NonNullable<Status['build']>;
type BaseRecord = NonNullable<Status['bases']>[number];
export type Phase = NonNullable<Status['phase']>;

export interface BaseObservation {
  image: string;
  digest?: string;
  /** Digests of the followed platforms' manifests, when spec.platforms is set. */
  platformDigests?: Record<string, string>;
  checkedAt?: Date;
  error?: string;
}

export interface SlotObservation {
  /** A build may start now. */
  available: boolean;
  /** 1-based place in the queue when not available. */
  position?: number;
  waiting?: number;
  limit: number;
}

export interface CycleInput {
  trigger: RebuildTrigger;
  provider: ProviderName;
  now: Date;
  bases: BaseObservation[];
  target: { digest?: string; error?: string };
  /** Judged provenance of the landed candidate (target digest), when there is one. */
  provenance?: { digest: string; result: ProvenanceResult };
  slot: SlotObservation;
  /** The user asked for a reconcile since the last one handled (retries a stalled build). */
  manualRetry: boolean;
}

export type Action =
  | { kind: 'none' }
  /** status.build is the Starting record: call the provider, then record the outcome. */
  | { kind: 'start' }
  /** status.build was Starting when read: an interrupted start, to resolve before anything else. */
  | { kind: 'resolve' }
  /** Ask the provider how the build is going. */
  | { kind: 'poll' };

export interface CycleDecision {
  status: Status;
  action: Action;
  events: DecidedEvent[];
  requeueAfterMs?: number;
  /** How the cycle stands, for the Ready/UpToDate/Building conditions. */
  summary: { ready: boolean; reason: string; message: string; upToDate: boolean; building: boolean; stalled: boolean };
}

export const IN_FLIGHT: readonly string[] = ['Starting', 'Queued', 'Running'];
const TERMINAL_FAILED: readonly string[] = ['Failed', 'Cancelled', 'Unknown'];
/** How long a Succeeded build may take to show up in the registry before it counts as failed. */
export const VERIFY_TIMEOUT_MS = 15 * 60_000;
const RETRY: { baseMs: number; maxMs: number } = { baseMs: 60_000, maxMs: 30 * 60_000 };

/** How often a build is polled: every 5 s at first, backing off to once a minute for long builds. */
export function pollInterval(runningMs: number): number {
  if (runningMs < 60_000) return 5_000;
  if (runningMs < 5 * 60_000) return 15_000;
  if (runningMs < 15 * 60_000) return 30_000;
  return 60_000;
}

const iso = (d: Date): string => timestamp(d);
const ms = (s: string | undefined): number => (s ? Date.parse(s) : NaN);

/** The followed identity of a base: its digest, or its followed platforms' digests. */
function effective(
  platforms: string[] | undefined,
  digest: string | undefined,
  platformDigests: Record<string, string> | undefined,
): string | undefined {
  if (!digest) return undefined;
  if (!platforms?.length) return digest;
  return platforms.map((p) => `${p}=${platformDigests?.[p] ?? '?'}`).join(',');
}

/** A short hash of every base's followed identity: one build per revision. */
export function revisionOf(trigger: RebuildTrigger, bases: BaseRecord[]): string {
  const parts = trigger.spec.baseImages.map((b) => {
    const rec = bases.find((r) => r.image === b.image);
    return `${b.image}=${effective(b.platforms, rec?.digest, rec?.platformDigests) ?? '?'}`;
  });
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

function historyEntry(b: Build): NonNullable<Status['history']>[number] {
  const h: NonNullable<Status['history']>[number] = {};
  for (const k of [
    'id',
    'url',
    'phase',
    'baseDigest',
    'outputDigest',
    'startedAt',
    'finishedAt',
    'revision',
    'attempt',
  ] as const) {
    const v = b[k];
    if (v !== undefined) (h as Record<string, unknown>)[k] = v;
  }
  if (b.message) h.message = b.message.slice(0, 1024);
  return h;
}

function landedFor(s: Status, b: Build | undefined): boolean {
  return !!b && !!s.landed && s.landed.revision === b.revision && s.landed.buildId === (b.id ?? b.correlationId);
}

/**
 * The target digest that proves a Succeeded build landed: the provider's output digest once
 * the tag shows it, else any digest other than the one before the build.
 */
export function landedCandidate(status: Status, targetDigest: string | undefined): string | undefined {
  const b = status.build;
  if (!b || b.phase !== 'Succeeded' || landedFor(status, b) || !targetDigest) return undefined;
  if (b.outputDigest) return targetDigest === b.outputDigest ? targetDigest : undefined;
  return targetDigest !== b.targetDigestBefore ? targetDigest : undefined;
}

export function decideCycle(input: CycleInput): CycleDecision {
  const { trigger, now } = input;
  const spec = trigger.spec;
  const s: Status = structuredClone(trigger.status ?? {});
  const events: DecidedEvent[] = [];
  let requeue: number | undefined;
  const wake = (at: number): void => {
    const d = Math.max(1_000, at - now.getTime());
    requeue = requeue === undefined ? d : Math.min(requeue, d);
  };
  const event = (
    type: DecidedEvent['type'],
    reason: string,
    action: string,
    note: string,
    details?: DecidedEvent['details'],
  ): void => {
    events.push({ type, reason, action, note, ...(details ? { details } : {}) });
  };

  // 1. Record what the registry says of each base; a change of a followed identity is a change.
  const previous = s.bases ?? [];
  const bases: BaseRecord[] = [];
  const changed: BaseRecord[] = [];
  const baseErrors: string[] = [];
  for (const b of spec.baseImages) {
    const obs = input.bases.find((o) => o.image === b.image);
    const rec: BaseRecord = { ...(previous.find((r) => r.image === b.image) ?? { image: b.image }) };
    if (obs?.error) {
      rec.error = obs.error.slice(0, 1024);
      baseErrors.push(`${b.image}: ${obs.error}`);
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
        changed.push(rec);
      }
      rec.digest = obs.digest;
      rec.shortDigest = shortDigest(obs.digest);
      if (obs.platformDigests && b.platforms?.length) rec.platformDigests = { ...obs.platformDigests };
    }
    bases.push(rec);
  }
  s.bases = bases;
  const known = bases.every((r) => r.digest);
  const revision = known ? revisionOf(trigger, bases) : undefined;

  // 2. A change of revision becomes (or renews) the pending change; settling restarts.
  const settleMs = parseDuration(spec.settle ?? '10m');
  if (changed.length > 0 && revision) {
    const first = changed[0]!;
    for (const c of changed) {
      event(
        'Normal',
        'BaseChanged',
        'Watch',
        `${c.image} changed from ${shortDigest(c.previousDigest ?? '')} to ${shortDigest(c.digest ?? '')}${settleMs > 0 ? `; rebuilding once it has been unchanged for ${formatDuration(settleMs)}` : ''}`,
      );
    }
    if (s.build?.revision === revision && !TERMINAL_FAILED.includes(s.build.phase ?? '')) {
      delete s.pending; // back to what is already being built or was built
    } else {
      s.pending = {
        revision,
        baseImage: first.image,
        baseDigest: first.digest!,
        since: iso(now),
        settleUntil: iso(new Date(now.getTime() + settleMs)),
      };
    }
  }

  let build = s.build;
  const timeoutMs = parseDuration(spec.build.timeout ?? '1h');
  const retries = spec.build.retries ?? 2;
  let action: Action = { kind: 'none' };
  let phase: Phase = 'Idle';
  const summary = { ready: true, reason: 'Idle', message: '', upToDate: true, building: false, stalled: false };

  const startBuild = (rev: string, baseImage: string, baseDigest: string, attempt: number): void => {
    if (build && !IN_FLIGHT.includes(build.phase ?? '')) {
      s.history = [historyEntry(build), ...(s.history ?? [])].slice(0, spec.historyLimit ?? 10);
    }
    const base = bases.find((r) => r.image === baseImage);
    s.build = {
      provider: input.provider,
      phase: 'Starting',
      revision: rev,
      attempt,
      correlationId: correlationId(trigger.metadata?.uid ?? '', rev, attempt),
      baseImage,
      baseDigest: base?.digest ?? baseDigest,
      requestedAt: iso(now),
      message: `requesting a ${input.provider} build for ${shortDigest(baseDigest)}${attempt > 1 ? ` (attempt ${attempt})` : ''}`,
      ...(input.target.digest ? { targetDigestBefore: input.target.digest } : {}),
    };
    delete s.pending;
    action = { kind: 'start' };
    phase = 'Building';
  };

  // 3. A build in flight is followed before anything else; one past its timeout has failed.
  if (build && IN_FLIGHT.includes(build.phase ?? '') && build.phase !== 'Starting') {
    const startedAt = ms(build.startedAt ?? build.requestedAt);
    if (Number.isFinite(startedAt) && now.getTime() - startedAt > timeoutMs) {
      build = s.build = {
        ...build,
        phase: 'Failed',
        finishedAt: iso(now),
        message: `timed out after ${formatDuration(timeoutMs)}`,
      };
      event(
        'Warning',
        'BuildTimedOut',
        'Build',
        `build ${build.id ?? ''} did not finish within ${formatDuration(timeoutMs)}`,
      );
    }
  }
  if (build && IN_FLIGHT.includes(build.phase ?? '')) {
    phase = 'Building';
    summary.building = true;
    summary.upToDate = false;
    summary.reason = 'Building';
    summary.message = `${build.provider ?? input.provider} build ${build.id ?? build.correlationId ?? ''} is ${build.phase}${build.attempt && build.attempt > 1 ? ` (attempt ${build.attempt})` : ''}`;
    action = { kind: build.phase === 'Starting' ? 'resolve' : 'poll' };
  } else if (build && build.phase === 'Succeeded' && !landedFor(s, build)) {
    // 4. Succeeded: wait for the rebuilt image to show in the registry, then judge its base.
    const candidate = landedCandidate(s, input.target.digest);
    const finished = ms(build.finishedAt);
    if (candidate && input.provenance?.digest === candidate) {
      const p = input.provenance.result;
      s.landed = {
        digest: candidate,
        provenance: p.verdict,
        at: iso(now),
        ...(build.revision ? { revision: build.revision } : {}),
        buildId: build.id ?? build.correlationId ?? '',
        ...(p.declared ? { baseDigest: p.declared.digest } : {}),
      };
      const note = `${spec.target.image} is ${shortDigest(candidate)}, rebuilt on ${build.baseImage ?? ''}@${shortDigest(build.baseDigest ?? '')}: provenance ${p.verdict.toLowerCase()} (${p.message})`;
      event(
        p.verdict === 'Mismatch' ? 'Warning' : 'Normal',
        p.verdict === 'Mismatch' ? 'ProvenanceMismatch' : 'Landed',
        'Verify',
        note,
        {
          digest: candidate,
          buildId: build.id,
          baseImage: build.baseImage,
          baseDigest: build.baseDigest,
          declaredBaseDigest: p.declared?.digest,
          provenance: p.verdict,
        },
      );
    } else if (Number.isFinite(finished) && now.getTime() - finished > VERIFY_TIMEOUT_MS) {
      // Retried like a failed build, counting the backoff from now.
      const attempt = build.attempt ?? 1;
      build = s.build = {
        ...build,
        phase: 'Failed',
        message: `the build succeeded but ${spec.target.image} did not change within ${formatDuration(VERIFY_TIMEOUT_MS)}`,
      };
      if (attempt <= (spec.build.retries ?? 2))
        build.retryAt = iso(new Date(now.getTime() + backoffDelay(attempt - 1, RETRY)));
      event('Warning', 'BuildFailed', 'Verify', build.message!);
    } else {
      phase = 'Verifying';
      summary.upToDate = false;
      summary.reason = 'Verifying';
      summary.message = `build ${build.id ?? ''} succeeded; waiting for ${spec.target.image} to show the rebuilt image`;
      wake(now.getTime() + 30_000);
    }
  }

  // 5. Nothing in flight: retry a failed build, or start the pending change.
  if (action.kind === 'none' && phase === 'Idle') {
    const current = s.build;
    const failed = current && TERMINAL_FAILED.includes(current.phase ?? '');
    if (input.manualRetry && failed && current.revision && !s.pending) {
      // Asked to try again: the failed revision becomes pending once more, past its settle
      // period, so that the window and the build queue still apply.
      s.pending = {
        revision: current.revision,
        baseImage: current.baseImage ?? '',
        baseDigest: current.baseDigest ?? '',
        since: iso(now),
        settleUntil: iso(now),
      };
      event(
        'Normal',
        'BuildRetried',
        'Build',
        `retrying the failed build of ${shortDigest(current.baseDigest ?? '')} on request`,
      );
    }
    const pending = s.pending;
    if (pending && (!current || current.revision !== pending.revision || failed)) {
      const settleUntil = ms(pending.settleUntil);
      const win = windowState(spec.window, now);
      summary.upToDate = false;
      if (Number.isFinite(settleUntil) && now.getTime() < settleUntil) {
        phase = 'Settling';
        summary.reason = 'Settling';
        summary.message = `${pending.baseImage} changed; waiting until ${pending.settleUntil} for it to settle`;
        wake(settleUntil);
      } else if (!win.open) {
        phase = 'Waiting';
        summary.reason = 'WaitingForWindow';
        summary.message = `waiting for the maintenance window opening at ${win.opensAt ? iso(win.opensAt) : '?'}`;
        if (win.opensAt) wake(win.opensAt.getTime());
        if (trigger.status?.phase !== 'Waiting') event('Normal', 'WaitingForWindow', 'Schedule', summary.message);
      } else if (!input.slot.available) {
        pending.readyAt ??= iso(now);
        phase = 'Queued';
        summary.reason = 'Queued';
        // The place in the queue as it was when the trigger joined it: rewriting hundreds of
        // statuses each time a slot frees would load the API server for nothing. The live
        // queue is in the metrics (patchline_builds_queued).
        const before = trigger.status?.conditions?.find((c) => c.type === 'Ready');
        summary.message =
          trigger.status?.phase === 'Queued' && before?.reason === 'Queued'
            ? before.message
            : `waiting for a build slot since ${pending.readyAt} (${input.slot.position ?? '?'} of ${input.slot.waiting ?? '?'} in the queue then; ${input.slot.limit} builds at a time)`;
        wake(now.getTime() + 600_000); // the slot manager wakes it when its turn comes; this is a safety net
        if (trigger.status?.phase !== 'Queued') event('Normal', 'BuildQueued', 'Build', summary.message);
      } else {
        // A revision tried before gets the next attempt number, so that its correlation id is new.
        const attempt = current && current.revision === pending.revision ? (current.attempt ?? 1) + 1 : 1;
        startBuild(pending.revision!, pending.baseImage!, pending.baseDigest!, attempt);
      }
    } else if (current && failed && !landedFor(s, current)) {
      const attempt = current.attempt ?? 1;
      if (!current.retryAt && attempt <= retries) {
        const from = ms(current.finishedAt);
        current.retryAt = iso(
          new Date((Number.isFinite(from) ? from : now.getTime()) + backoffDelay(attempt - 1, RETRY)),
        );
      }
      const retryAt = ms(current.retryAt);
      if (attempt <= retries && Number.isFinite(retryAt)) {
        if (now.getTime() >= retryAt && input.slot.available) {
          startBuild(current.revision!, current.baseImage!, current.baseDigest!, attempt + 1);
        } else {
          phase = 'Failed';
          summary.upToDate = false;
          summary.reason = 'Retrying';
          summary.message = `build failed (${current.message ?? ''}); attempt ${attempt + 1} of ${retries + 1} at ${current.retryAt}`;
          wake(Math.max(retryAt, now.getTime() + 1_000));
        }
      } else {
        phase = 'Failed';
        summary.ready = false;
        summary.stalled = true;
        summary.upToDate = false;
        summary.reason = 'BuildFailed';
        summary.message = `the ${current.provider ?? input.provider} build failed after ${attempt} attempt(s): ${current.message ?? ''}${current.url ? ` (${current.url})` : ''}. Annotate the trigger with patchline.dev/reconcile-requested-at to try again.`;
      }
    } else if (s.landed && current && landedFor(s, current)) {
      phase = 'Landed';
      summary.reason = s.landed.provenance === 'Mismatch' ? 'ProvenanceMismatch' : 'Landed';
      summary.ready = s.landed.provenance !== 'Mismatch';
      summary.upToDate = s.landed.provenance !== 'Mismatch';
      summary.message = `${spec.target.image} is ${shortDigest(s.landed.digest ?? '')}, rebuilt on the current bases (provenance ${(s.landed.provenance ?? 'Unknown').toLowerCase()})`;
    } else {
      phase = 'Idle';
      summary.reason = 'Idle';
      summary.message = known
        ? `following ${spec.baseImages.length} base image(s); no change since ${bases.map((b) => shortDigest(b.digest ?? '')).join(', ')}`
        : `learning the digests of ${spec.baseImages.map((b) => b.image).join(', ')}`;
    }
  }

  if (baseErrors.length > 0 && !summary.stalled) {
    summary.ready = false;
    summary.reason = 'RegistryError';
    summary.message = `cannot read base images: ${baseErrors.join('; ')}`.slice(0, 2000);
  }
  if (action.kind === 'poll') {
    const running = now.getTime() - ms(s.build?.startedAt ?? s.build?.requestedAt);
    requeue = Math.min(requeue ?? Infinity, pollInterval(Number.isFinite(running) ? running : 0));
  }
  s.phase = phase;
  const decision: CycleDecision = { status: s, action, events, summary };
  if (requeue !== undefined && Number.isFinite(requeue)) decision.requeueAfterMs = requeue;
  return decision;
}

export interface BuildOutcome {
  /** The provider answered with a handle or a status. */
  status?: ProviderBuildStatus;
  handle?: { id: string; url?: string; externalId?: string };
  /** The call failed: the error's class and message. */
  error?: { kind: 'rejected' | 'unavailable' | 'throttled'; message: string; retryAfterMs?: number };
}

/**
 * Applies what a provider call said to the build record — the second half of the
 * exactly-once protocol. Returns undefined when the status no longer holds the build it was
 * for (someone else moved on); the caller then leaves status alone.
 */
export function applyOutcome(
  status: Status,
  correlation: string,
  outcome: BuildOutcome,
  now: Date,
  retries: number,
): { status: Status; events: DecidedEvent[] } | undefined {
  const b = status.build;
  if (!b || b.correlationId !== correlation || !IN_FLIGHT.includes(b.phase ?? '')) return undefined;
  const s = structuredClone(status);
  const next: Build = { ...s.build! };
  const events: DecidedEvent[] = [];
  const attempt = next.attempt ?? 1;
  // The audit trail's facts about this build; read when each event is made.
  const details = () => ({
    provider: next.provider,
    buildId: next.id,
    attempt,
    baseImage: next.baseImage,
    baseDigest: next.baseDigest,
    outputDigest: next.outputDigest,
    url: next.url,
  });
  const scheduleRetry = (message: string): void => {
    if (attempt <= retries) {
      next.retryAt = iso(new Date(now.getTime() + backoffDelay(attempt - 1, RETRY)));
      events.push({
        type: 'Warning',
        reason: 'BuildFailed',
        action: 'Build',
        note: `${message}; retrying at ${next.retryAt}`,
        details: details(),
      });
    } else {
      events.push({
        type: 'Warning',
        reason: 'BuildFailed',
        action: 'Build',
        note: `${message}; no retries left${next.url ? ` (${next.url})` : ''}`,
        details: details(),
      });
    }
  };
  if (outcome.handle) {
    const wasStarting = next.phase === 'Starting';
    next.id = outcome.handle.id;
    if (outcome.handle.url) next.url = outcome.handle.url;
    if (outcome.handle.externalId) next.externalId = outcome.handle.externalId;
    if (wasStarting) {
      next.phase = 'Queued';
      next.startedAt = iso(now);
      next.message = `${next.provider ?? ''} build ${next.id} started`;
      events.push({
        type: 'Normal',
        reason: 'BuildStarted',
        action: 'Build',
        note: `started ${next.provider ?? ''} build ${next.id} for ${next.baseImage ?? ''}@${shortDigest(next.baseDigest ?? '')}${attempt > 1 ? ` (attempt ${attempt})` : ''}${next.url ? ` (${next.url})` : ''}`,
        details: details(),
      });
    }
  }
  if (outcome.status) {
    const st = outcome.status;
    if (st.handle) {
      next.id = st.handle.id;
      if (st.handle.url) next.url = st.handle.url;
    }
    if (st.url) next.url = st.url;
    if (st.message) next.message = st.message.slice(0, 4096);
    if (st.outputDigest) next.outputDigest = st.outputDigest;
    if (st.phase === 'Queued' || st.phase === 'Running') {
      next.phase = st.phase;
    } else if (st.phase === 'Succeeded') {
      next.phase = 'Succeeded';
      next.finishedAt = iso(now);
      if (!st.message) next.message = `build ${next.id ?? ''} succeeded`;
      events.push({
        type: 'Normal',
        reason: 'BuildSucceeded',
        action: 'Build',
        note: `build ${next.id ?? ''} succeeded${next.outputDigest ? `, pushed ${shortDigest(next.outputDigest)}` : ''}`,
        details: details(),
      });
    } else {
      next.phase = st.phase === 'Cancelled' ? 'Cancelled' : st.phase === 'Unknown' ? 'Unknown' : 'Failed';
      next.finishedAt = iso(now);
      scheduleRetry(`build ${next.id ?? ''} ${next.phase.toLowerCase()}: ${st.message ?? ''}`);
    }
  }
  if (outcome.error) {
    const e = outcome.error;
    next.message = e.message.slice(0, 4096);
    if (e.kind === 'rejected') {
      next.phase = 'Failed';
      next.finishedAt = iso(now);
      scheduleRetry(`the build service refused the build: ${e.message}`);
    }
    // unavailable / throttled: the outcome is unknown, the record stays as it is, to resolve.
  }
  s.build = next;
  return { status: s, events };
}
