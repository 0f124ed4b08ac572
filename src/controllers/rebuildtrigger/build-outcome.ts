// What a build provider said, applied to the build record in status: the second half of the
// exactly-once protocol (the first is the Starting record the cycle writes before the call).
// A pure function: the reconciler and the build-callback receiver make the call or receive
// the answer, then write what this returns.
import type { BuildStatus as ProviderBuildStatus } from '../../builders/types.ts';
import { backoffDelay } from '../../runtime/clock.ts';
import { shortDigest } from '../../registry/reference.ts';
import type { DecidedEvent } from '../lifecycle.ts';
import { IN_FLIGHT, RETRY, iso, type Build, type Status } from './cycle-model.ts';

export interface BuildOutcome {
  /** The provider answered with a handle or a status. */
  status?: ProviderBuildStatus;
  handle?: { id: string; url?: string; externalId?: string };
  /** The call failed: the error's class and message. */
  error?: { kind: 'rejected' | 'unavailable' | 'throttled'; message: string; retryAfterMs?: number };
}

/** The build record being updated, the events it deserves, and the facts they carry. */
interface OutcomeDraft {
  readonly build: Build;
  readonly now: Date;
  readonly retries: number;
  readonly attempt: number;
  readonly events: DecidedEvent[];
}

/** The audit trail's facts about this build, read when each event is made. */
function details(d: OutcomeDraft): DecidedEvent['details'] {
  const b = d.build;
  return {
    provider: b.provider,
    buildId: b.id,
    attempt: d.attempt,
    baseImage: b.baseImage,
    baseDigest: b.baseDigest,
    outputDigest: b.outputDigest,
    url: b.url,
  };
}

/** A failed attempt: retried after a backoff while attempts remain. */
function failAttempt(d: OutcomeDraft, message: string): void {
  const b = d.build;
  b.finishedAt = iso(d.now);
  let note: string;
  if (d.attempt <= d.retries) {
    b.retryAt = iso(new Date(d.now.getTime() + backoffDelay(d.attempt - 1, RETRY)));
    note = `${message}; retrying at ${b.retryAt}`;
  } else {
    note = `${message}; no retries left${b.url ? ` (${b.url})` : ''}`;
  }
  d.events.push({ type: 'Warning', reason: 'BuildFailed', action: 'Build', note, details: details(d) });
}

/** The provider accepted the build and named it: a Starting build has started. */
function applyHandle(d: OutcomeDraft, handle: NonNullable<BuildOutcome['handle']>): void {
  const b = d.build;
  delete b.followError;
  const wasStarting = b.phase === 'Starting';
  b.id = handle.id;
  if (handle.url) b.url = handle.url;
  if (handle.externalId) b.externalId = handle.externalId;
  if (!wasStarting) return;
  b.phase = 'Queued';
  b.startedAt = iso(d.now);
  b.message = `${b.provider ?? ''} build ${b.id} started`;
  d.events.push({
    type: 'Normal',
    reason: 'BuildStarted',
    action: 'Build',
    note: `started ${b.provider ?? ''} build ${b.id} for ${b.baseImage ?? ''}@${shortDigest(b.baseDigest ?? '')}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}${b.url ? ` (${b.url})` : ''}`,
    details: details(d),
  });
}

/** How the build stands now: still going, succeeded, or ended otherwise. */
function applyStatus(d: OutcomeDraft, st: ProviderBuildStatus): void {
  const b = d.build;
  delete b.followError;
  if (st.handle) {
    b.id = st.handle.id;
    if (st.handle.url) b.url = st.handle.url;
  }
  if (st.url) b.url = st.url;
  if (st.message) b.message = st.message.slice(0, 4096);
  if (st.outputDigest) b.outputDigest = st.outputDigest;
  if (st.phase === 'Queued' || st.phase === 'Running') {
    b.phase = st.phase;
  } else if (st.phase === 'Succeeded') {
    b.phase = 'Succeeded';
    b.finishedAt = iso(d.now);
    if (!st.message) b.message = `build ${b.id ?? ''} succeeded`;
    d.events.push({
      type: 'Normal',
      reason: 'BuildSucceeded',
      action: 'Build',
      note: `build ${b.id ?? ''} succeeded${b.outputDigest ? `, pushed ${shortDigest(b.outputDigest)}` : ''}`,
      details: details(d),
    });
  } else {
    b.phase = st.phase === 'Cancelled' ? 'Cancelled' : st.phase === 'Unknown' ? 'Unknown' : 'Failed';
    failAttempt(d, `build ${b.id ?? ''} ${b.phase.toLowerCase()}: ${st.message ?? ''}`);
  }
}

/**
 * The call failed. Refused: the attempt failed. Unavailable or throttled: the outcome is
 * unknown, the record stays as it is, to be resolved.
 */
function applyError(d: OutcomeDraft, e: NonNullable<BuildOutcome['error']>): void {
  d.build.message = e.message.slice(0, 4096);
  if (e.kind !== 'rejected') {
    // Said on the trigger's conditions while it lasts; the build itself is not failed for it.
    d.build.followError = e.message.slice(0, 4096);
    return;
  }
  delete d.build.followError;
  d.build.phase = 'Failed';
  failAttempt(d, `the build service refused the build: ${e.message}`);
}

/**
 * Applies what a provider call said to the build record. Returns undefined when the status
 * no longer holds the build it was for (someone else moved on); the caller then leaves
 * status alone.
 */
export function applyOutcome(
  status: Status,
  correlation: string,
  outcome: BuildOutcome,
  now: Date,
  retries: number,
): { status: Status; events: DecidedEvent[] } | undefined {
  const current = status.build;
  if (!current || current.correlationId !== correlation || !IN_FLIGHT.includes(current.phase ?? '')) return undefined;
  const s = structuredClone(status);
  const d: OutcomeDraft = { build: s.build!, now, retries, attempt: current.attempt ?? 1, events: [] };
  if (outcome.handle) applyHandle(d, outcome.handle);
  if (outcome.status) applyStatus(d, outcome.status);
  if (outcome.error) applyError(d, outcome.error);
  return { status: s, events: d.events };
}
