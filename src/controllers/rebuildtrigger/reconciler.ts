// RebuildTrigger reconciler: gather what the registries and the build service say, decide
// (pure: decide.ts and cycle.ts), then do the one action decided, recording it in status.
//
// Exactly once per (trigger, base revision, attempt):
//   1. the intent — build.phase Starting with its correlation id — is written to status
//      with the resourceVersion read, so only one writer can record it;
//   2. only then is the provider called, with that correlation id;
//   3. the outcome is committed (re-read, still the same Starting record, write);
//   4. a Starting record found later is an interrupted start: the provider is asked for the
//      build by correlation id (after its grace period) before anything is started again,
//      and even then with the same correlation id, which idempotent providers deduplicate.
import { RebuildTriggerType, type RebuildTrigger, type RebuildTriggerStatus } from '../../api/v1alpha1/index.ts';
import { createProvider } from '../../builders/index.ts';
import { BuildError, type BuildProvider, type BuildRequest, type ProviderCredentials } from '../../builders/types.ts';
import { CredentialError, type CredentialSource } from '../../registry/auth/credentials.ts';
import { parseReference, repositoryName, type ImageReference } from '../../registry/reference.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { KubeClient } from '../../runtime/kube-client.ts';
import type { ObjectKey } from '../../runtime/kube-types.ts';
import { counter, exponentialBuckets, histogram, type Registry } from '../../runtime/metrics.ts';
import { parseDuration } from '../../runtime/duration.ts';
import {
  done,
  requeueAfter,
  type ReconcileContext,
  type ReconcileResult,
  type Reconciler,
} from '../../runtime/reconciler.ts';
import { statusEqual, type StatusWriter } from '../../runtime/status.ts';
import { judge } from '../../verify/provenance.ts';
import type { CredentialResolver } from '../credentials.ts';
import { withKind, type DecidedEvent } from '../lifecycle.ts';
import type { RegistryFacts } from '../registry-facts.ts';
import type { ResourceWatches, WatchWish } from '../watches.ts';
import { applyOutcome, type BuildOutcome } from './build-outcome.ts';
import { IN_FLIGHT, landedCandidate, type BaseObservation } from './cycle-model.ts';
import {
  decideRebuildTrigger,
  specProblems,
  providerName,
  type Gathered,
  type RebuildTriggerDecision,
} from './decide.ts';
import type { BuildSlots } from './slots.ts';
import { actorFor } from '../../runtime/impersonation.ts';

export type ProviderFactory = (trigger: RebuildTrigger, credentials: ProviderCredentials) => BuildProvider;

export interface RebuildTriggerReconcilerDeps {
  get(key: ObjectKey): RebuildTrigger | undefined;
  list(): RebuildTrigger[];
  status: StatusWriter;
  events: EventRecorder;
  watches: ResourceWatches;
  credentials: CredentialResolver;
  facts: RegistryFacts;
  slots: BuildSlots;
  providers: ProviderFactory;
  registry?: Registry;
  now?: () => Date;
}

/**
 * Providers for a trigger; build objects in the cluster are created as the ServiceAccount the
 * trigger (or the operator's default) names, so a tenant gets no Job it could not create itself.
 */
export function defaultProviders(
  client: KubeClient,
  callbackBase?: string,
  defaultServiceAccount = '',
): ProviderFactory {
  return (trigger, credentials) =>
    createProvider(
      trigger.spec.build,
      credentials,
      client,
      callbackBase,
      actorFor(trigger.metadata?.namespace ?? '', trigger.spec.serviceAccountName, defaultServiceAccount),
    );
}

const keyOf = (k: ObjectKey): string => `${k.namespace}/${k.name}`;

export class RebuildTriggerReconciler implements Reconciler {
  private readonly deps: RebuildTriggerReconcilerDeps;
  private seeded = false;
  private readonly metrics;

  constructor(deps: RebuildTriggerReconcilerDeps) {
    this.deps = deps;
    const r = deps.registry;
    this.metrics = r
      ? {
          builds: counter(r, {
            name: 'patchline_builds_total',
            help: 'Builds by provider and result (started, succeeded, failed, cancelled, unknown).',
            labelNames: ['provider', 'result'] as const,
          }),
          toStart: histogram(r, {
            name: 'patchline_build_start_delay_seconds',
            help: 'Time from a base change to its build being started (settle, window and queue included).',
            labelNames: ['provider'] as const,
            buckets: exponentialBuckets(1, 2, 16),
          }),
          duration: histogram(r, {
            name: 'patchline_build_duration_seconds',
            help: 'Time from a build being started to its end.',
            labelNames: ['provider', 'result'] as const,
            buckets: exponentialBuckets(5, 2, 12),
          }),
          toLanded: histogram(r, {
            name: 'patchline_time_to_landed_seconds',
            help: 'Time from a base change to the rebuilt image confirmed in the registry.',
            labelNames: ['provider'] as const,
            buckets: exponentialBuckets(5, 2, 14),
          }),
        }
      : undefined;
  }

  private now(): Date {
    return (this.deps.now ?? (() => new Date()))();
  }

  /** On the first reconcile after gaining leadership: every build in flight holds a slot. */
  private seed(): void {
    if (this.seeded) return;
    this.seeded = true;
    for (const t of this.deps.list()) {
      const key = `${t.metadata?.namespace ?? ''}/${t.metadata?.name ?? ''}`;
      if (IN_FLIGHT.includes(t.status?.build?.phase ?? '')) this.deps.slots.observe(key, true);
    }
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    this.seed();
    const k = keyOf(key);
    const trigger = this.deps.get(key);
    if (!trigger || trigger.metadata?.deletionTimestamp) {
      this.deps.watches.drop(k);
      this.deps.slots.forget(k);
      return done;
    }
    const now = this.now();
    const inFlight = IN_FLIGHT.includes(trigger.status?.build?.phase ?? '');
    this.deps.slots.observe(k, inFlight);
    const gathered = await this.gather(k, trigger, ctx);
    const decision = this.decide(k, trigger, now, gathered, inFlight);
    return this.act(k, trigger, now, decision, ctx);
  }

  /** What the registries say of the bases and the target, and the provenance of a landed image. */
  private async gather(k: string, trigger: RebuildTrigger, ctx: ReconcileContext): Promise<Gathered> {
    const namespace = trigger.metadata?.namespace ?? '';
    const valid = specProblems(trigger).length === 0 && !!providerName(trigger.spec.build);
    const source = this.deps.credentials.registrySource(namespace, trigger.spec.registryAuth);
    const bases = trigger.spec.baseImages.map((b) => ({ spec: b, ref: parseReference(b.image) }));
    const target = parseReference(trigger.spec.target.image);
    if (valid && trigger.spec.suspend !== true) {
      const intervalMs = parseDuration(trigger.spec.interval ?? '5m');
      const wishes: WatchWish[] = [
        ...bases.map((b) => ({ reference: b.ref, source, intervalMs })),
        { reference: target, source, intervalMs },
      ];
      this.deps.watches.sync(k, wishes);
    } else {
      this.deps.watches.drop(k);
      this.deps.slots.leaveQueue(k);
    }
    const observations: BaseObservation[] = [];
    for (const b of bases) observations.push(await this.observeBase(k, b.spec, b.ref, source, ctx.signal));
    const targetState = this.deps.watches.state(k, target);
    const targetObs: { digest?: string; error?: string } = {};
    if (targetState?.digest) targetObs.digest = targetState.digest;
    if (targetState?.error) targetObs.error = targetState.error;
    const gathered: Gathered = {
      bases: observations,
      target: targetObs,
      slot: { available: true, limit: this.deps.slots.limit },
    };
    const status = trigger.status ?? {};
    const candidate = landedCandidate(status, targetObs.digest);
    if (candidate) {
      try {
        const declared = await this.deps.facts.declaredBases(target, candidate, source, ctx.signal);
        const expected = {
          repositories: bases.map((b) => repositoryName(b.ref)),
          digests: (status.bases ?? [])
            .flatMap((b) => [b.digest, ...Object.values(b.platformDigests ?? {})])
            .filter((d): d is string => !!d),
        };
        gathered.provenance = { digest: candidate, result: judge(declared, expected) };
      } catch (err) {
        ctx.log.warn('cannot read the provenance of the rebuilt image; will try again', {
          digest: candidate,
          error: String(err),
        });
      }
    }
    return gathered;
  }

  /** A base as the shared watcher last saw it; with `platforms`, the followed platforms' digests. */
  private async observeBase(
    k: string,
    spec: RebuildTrigger['spec']['baseImages'][number],
    ref: ImageReference,
    source: CredentialSource,
    signal: AbortSignal,
  ): Promise<BaseObservation> {
    const st = this.deps.watches.state(k, ref);
    const obs: BaseObservation = { image: spec.image };
    if (st?.digest) obs.digest = st.digest;
    if (st?.checkedAt) obs.checkedAt = new Date(st.checkedAt);
    if (st?.error) obs.error = st.error;
    if (st?.budget) obs.budget = st.budget;
    if (obs.digest && spec.platforms?.length) {
      try {
        obs.platformDigests = await this.deps.facts.platformDigests(ref, obs.digest, spec.platforms, source, signal);
      } catch (err) {
        // Without the platform digests, the change cannot be judged yet: keep the old digest.
        delete obs.digest;
        obs.error = `reading the platforms of ${spec.image}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    return obs;
  }

  /**
   * Decides first as if a build slot were free; a decision to start asks the slot manager,
   * and when none is free for this trigger, decides again with its place in the queue.
   */
  private decide(
    k: string,
    trigger: RebuildTrigger,
    now: Date,
    gathered: Gathered,
    inFlight: boolean,
  ): RebuildTriggerDecision {
    const decision = decideRebuildTrigger(trigger, now, gathered);
    if (decision.action.kind === 'start') {
      const readySince = Date.parse(trigger.status?.pending?.readyAt ?? '') || now.getTime();
      const slot = this.deps.slots.check(k, readySince);
      if (!slot.available) return decideRebuildTrigger(trigger, now, { ...gathered, slot });
    } else if (!inFlight) {
      this.deps.slots.leaveQueue(k);
    }
    return decision;
  }

  /** Status first (the intent of a build start is in it), then the provider's part. */
  private async act(
    k: string,
    trigger: RebuildTrigger,
    now: Date,
    decision: RebuildTriggerDecision,
    ctx: ReconcileContext,
  ): Promise<ReconcileResult> {
    if (decision.action.kind === 'start' && !this.deps.slots.take(k)) return requeueAfter(1_000); // lost a race for the last slot
    const wrote = await this.deps.status.write(RebuildTriggerType, trigger, decision.status);
    if (wrote) this.record(trigger, decision.events, ctx);
    this.observeTimes(trigger.status ?? {}, decision, now);
    // Waiting for a rebuilt image: look at the target now, not at its next interval.
    if (decision.status.phase === 'Verifying') this.deps.watches.lookNow(parseReference(trigger.spec.target.image));
    if (decision.action.kind === 'none') {
      if (!IN_FLIGHT.includes(decision.status.build?.phase ?? '')) this.deps.slots.observe(k, false);
      return decision.requeueAfterMs ? requeueAfter(decision.requeueAfterMs) : done;
    }
    const after = await this.buildStep(trigger, decision.status, decision.action.kind, ctx);
    const next = Math.min(decision.requeueAfterMs ?? Infinity, after ?? Infinity);
    return Number.isFinite(next) ? requeueAfter(next) : done;
  }

  /** Time to patch, per stage: base change to build start, base change to landed image. */
  private observeTimes(before: RebuildTriggerStatus, decision: RebuildTriggerDecision, now: Date): void {
    const status = decision.status;
    const changedAt = (image: string | undefined): string | undefined =>
      status.bases?.find((x) => x.image === image)?.changedAt;
    const b = status.build;
    if (decision.action.kind === 'start' && b?.requestedAt) {
      const since = Date.parse(changedAt(b.baseImage) ?? b.requestedAt);
      this.metrics?.toStart.observe({ provider: b.provider ?? '' }, Math.max(0, (now.getTime() - since) / 1000));
    }
    if (status.landed && status.landed.at !== before.landed?.at) {
      const since = Date.parse(changedAt(b?.baseImage) ?? '');
      if (Number.isFinite(since))
        this.metrics?.toLanded.observe({ provider: b?.provider ?? '' }, (now.getTime() - since) / 1000);
    }
  }

  private record(trigger: RebuildTrigger, events: DecidedEvent[], _ctx: ReconcileContext): void {
    const regarding = withKind(trigger, 'RebuildTrigger');
    for (const e of events) this.deps.events.record(regarding, e.type, e.reason, e.action, e.note, e.details);
  }

  private request(trigger: RebuildTrigger, status: RebuildTriggerStatus): BuildRequest {
    const b = status.build!;
    const baseRef: ImageReference = parseReference(b.baseImage ?? trigger.spec.baseImages[0]!.image);
    return {
      correlationId: b.correlationId!,
      attempt: b.attempt ?? 1,
      trigger: {
        namespace: trigger.metadata?.namespace ?? '',
        name: trigger.metadata?.name ?? '',
        uid: trigger.metadata?.uid ?? '',
      },
      base: {
        image: b.baseImage ?? '',
        digest: b.baseDigest ?? '',
        ref: `${repositoryName(baseRef)}@${b.baseDigest ?? ''}`,
      },
      target: { image: trigger.spec.target.image },
      requestedAt: new Date(b.requestedAt ?? this.now().toISOString()),
      timeoutMs: parseDuration(trigger.spec.build.timeout ?? '1h'),
    };
  }

  /**
   * The provider's part of the action: start, resolve or poll, and the outcome committed.
   * Returns when to come back.
   */
  private async buildStep(
    trigger: RebuildTrigger,
    status: RebuildTriggerStatus,
    kind: 'start' | 'resolve' | 'poll',
    ctx: ReconcileContext,
  ): Promise<number | undefined> {
    const key = { namespace: trigger.metadata?.namespace ?? '', name: trigger.metadata?.name ?? '' };
    const req = this.request(trigger, status);
    const b = status.build!;
    let provider: BuildProvider;
    let outcome: BuildOutcome;
    try {
      provider = this.deps.providers(
        trigger,
        await this.deps.credentials.buildCredentials(key.namespace, trigger.spec.build.credentialsRef, ctx.signal),
      );
    } catch (err) {
      outcome = {
        error: {
          kind: 'rejected',
          message: err instanceof BuildError || err instanceof CredentialError ? err.message : String(err),
        },
      };
      return this.commit(trigger, req.correlationId, outcome, ctx);
    }
    try {
      if (kind === 'start') {
        outcome = { handle: await provider.start(req, ctx.signal) };
      } else if (kind === 'resolve') {
        const found = await provider.find(req, ctx.signal);
        if (found) {
          ctx.log.info('resolved an interrupted build start', { build: found.id, correlationId: req.correlationId });
          outcome = { handle: found };
        } else {
          const waited = this.now().getTime() - req.requestedAt.getTime();
          if (waited < provider.findGraceMs) return provider.findGraceMs - waited; // it may yet appear
          ctx.log.info('no build found for an interrupted start; starting it (same correlation id)', {
            correlationId: req.correlationId,
          });
          outcome = { handle: await provider.start(req, ctx.signal) };
        }
      } else {
        outcome = {
          status: await provider.status(
            req,
            {
              id: b.id ?? req.correlationId,
              ...(b.url ? { url: b.url } : {}),
              ...(b.externalId ? { externalId: b.externalId } : {}),
            },
            ctx.signal,
          ),
        };
      }
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      const e =
        err instanceof BuildError
          ? err
          : new BuildError('unavailable', err instanceof Error ? err.message : String(err));
      outcome = {
        error: {
          kind: e.kind,
          message: e.message,
          ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
        },
      };
      ctx.log.warn('build provider call failed', { action: kind, kind: e.kind, error: e.message });
    }
    return this.commit(trigger, req.correlationId, outcome, ctx);
  }

  private async commit(
    trigger: RebuildTrigger,
    correlation: string,
    outcome: BuildOutcome,
    ctx: ReconcileContext,
  ): Promise<number | undefined> {
    const key = { namespace: trigger.metadata?.namespace ?? '', name: trigger.metadata?.name ?? '' };
    const k = keyOf(key);
    const retries = trigger.spec.build.retries ?? 2;
    const now = this.now();
    let events: DecidedEvent[] = [];
    const written = await this.deps.status.commit<RebuildTrigger, RebuildTriggerStatus>(
      RebuildTriggerType,
      key,
      (current) => {
        // Still the build this outcome is for? (Another writer may have moved on.)
        const applied = applyOutcome(current.status ?? {}, correlation, outcome, now, retries);
        if (!applied || statusEqual(applied.status, current.status)) return undefined;
        events = applied.events;
        return applied.status;
      },
    );
    if (written) {
      this.record(trigger, events, ctx);
      const b = written.build;
      if (events.some((e) => e.reason === 'BuildStarted'))
        this.metrics?.builds.inc({ provider: b?.provider ?? '', result: 'started' });
      if (b && !IN_FLIGHT.includes(b.phase ?? '')) {
        const result = (b.phase ?? 'unknown').toLowerCase();
        this.metrics?.builds.inc({ provider: b.provider ?? '', result });
        const started = Date.parse(b.startedAt ?? '');
        if (Number.isFinite(started))
          this.metrics?.duration.observe({ provider: b.provider ?? '', result }, (now.getTime() - started) / 1000);
        this.deps.slots.observe(k, false);
        if (b.phase === 'Succeeded') this.deps.watches.lookNow(parseReference(trigger.spec.target.image));
      }
    }
    if (outcome.error?.kind === 'throttled') return outcome.error.retryAfterMs ?? 30_000;
    if (outcome.error?.kind === 'unavailable') return 15_000;
    return 5_000;
  }
}
