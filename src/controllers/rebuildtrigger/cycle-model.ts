// The rebuild cycle's vocabulary: what the reconciler observes, the action and decision the
// cycle returns, the build phases, and the small pure helpers the cycle's steps and the
// reconciler share (revisions, landing, poll intervals).
import type { BudgetShortfall } from '../../registry/watcher.ts';
import { createHash } from 'node:crypto';
import type { RebuildTrigger, RebuildTriggerStatus } from '../../api/v1alpha1/index.ts';
import type { ProviderName } from '../../builders/types.ts';
import { timestamp } from '../../runtime/conditions.ts';
import type { ProvenanceResult } from '../../verify/provenance.ts';
import type { DecidedEvent } from '../lifecycle.ts';

export type Status = RebuildTriggerStatus;
export type Build = NonNullable<Status['build']>;
export type BaseRecord = NonNullable<Status['bases']>[number];
export type Phase = NonNullable<Status['phase']>;

export interface BaseObservation {
  image: string;
  digest?: string;
  /** Digests of the followed platforms' manifests, when spec.platforms is set. */
  platformDigests?: Record<string, string>;
  checkedAt?: Date;
  error?: string;
  /** The registry's request budget checks the base less often than the interval asks. */
  budget?: BudgetShortfall;
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
  summary: CycleSummary;
}

export interface CycleSummary {
  ready: boolean;
  reason: string;
  message: string;
  upToDate: boolean;
  building: boolean;
  stalled: boolean;
}

export const IN_FLIGHT: readonly string[] = ['Starting', 'Queued', 'Running'];
export const TERMINAL_FAILED: readonly string[] = ['Failed', 'Cancelled', 'Unknown'];
/** How long a Succeeded build may take to show up in the registry before it counts as failed. */
export const VERIFY_TIMEOUT_MS = 15 * 60_000;
export const RETRY: { baseMs: number; maxMs: number } = { baseMs: 60_000, maxMs: 30 * 60_000 };

/**
 * Builds whose end the operator is told of as it happens: Jobs and PipelineRuns it watches,
 * webhook builds that call back (no statusURL). They are looked at again only as a fallback.
 */
export function reportsItsEnd(spec: RebuildTrigger['spec']['build']): boolean {
  return spec.job !== undefined || spec.tekton !== undefined || (spec.webhook !== undefined && !spec.webhook.statusURL);
}

/** How often a build the operator is told about is looked at anyway (a missed event, a lost callback). */
export const REPORTED_BUILD_FALLBACK_MS = 60_000;

/** How often a build is polled: every 5 s at first, backing off to once a minute for long builds. */
export function pollInterval(runningMs: number): number {
  if (runningMs < 60_000) return 5_000;
  if (runningMs < 5 * 60_000) return 15_000;
  if (runningMs < 15 * 60_000) return 30_000;
  return 60_000;
}

export const iso = (d: Date): string => timestamp(d);
/** A status time in milliseconds; NaN when absent. */
export const ms = (s: string | undefined): number => (s ? Date.parse(s) : NaN);

/** The followed identity of a base: its digest, or its followed platforms' digests. */
export function effective(
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

export function historyEntry(b: Build): NonNullable<Status['history']>[number] {
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

/** The build's image has landed (status.landed is this build's). */
export function landedFor(s: Status, b: Build | undefined): boolean {
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
