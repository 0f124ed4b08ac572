// What a RebuildTrigger's status should be, and the one action to take: a pure function of
// the resource and what the reconciler gathered.
import { intervalCondition } from '../interval-budget.ts';
import {
  ConditionTypes,
  ReconcileRequestedAt,
  type RebuildTrigger,
  type RebuildTriggerStatus,
} from '../../api/v1alpha1/index.ts';
import { PROVIDERS, providerName } from '../../builders/index.ts';
import {
  Ready,
  Reconciling,
  Stalled,
  applyConditions,
  findCondition,
  type Condition,
  type ConditionInput,
} from '../../runtime/conditions.ts';
import { decideLifecycle, type DecidedEvent } from '../lifecycle.ts';
import { checkDuration, checkImage, checkWindow, type SpecProblem } from '../spec-checks.ts';
import { decideCycle } from './cycle.ts';
import { IN_FLIGHT, type Action, type BaseObservation, type CycleInput, type CycleSummary } from './cycle-model.ts';
import type { ProviderName } from '../../builders/types.ts';

export { providerName };

export interface RebuildTriggerDecision {
  status: RebuildTriggerStatus;
  events: DecidedEvent[];
  action: Action;
  requeueAfterMs?: number;
}

export type Gathered = Omit<CycleInput, 'trigger' | 'provider' | 'now' | 'manualRetry'>;

export function specProblems(trigger: RebuildTrigger): SpecProblem[] {
  const spec = trigger.spec;
  const problems: SpecProblem[] = [];
  spec.baseImages.forEach((b, i) => problems.push(...checkImage(`baseImages[${i}].image`, b.image)));
  problems.push(...checkImage('target.image', spec.target.image));
  if (!providerName(spec.build)) {
    problems.push({ field: 'build', message: `exactly one build provider must be set (${PROVIDERS.join(', ')})` });
  }
  problems.push(...checkDuration('settle', spec.settle, { maxMs: 168 * 3_600_000 }));
  problems.push(...checkDuration('interval', spec.interval, { minMs: 30_000 }));
  problems.push(...checkDuration('build.timeout', spec.build.timeout, { minMs: 60_000 }));
  problems.push(...checkWindow('window', spec.window));
  if (spec.build.webhook?.body !== undefined) {
    try {
      JSON.parse(spec.build.webhook.body);
    } catch {
      problems.push({
        field: 'build.webhook.body',
        message: 'must be a JSON document (substitutions go inside its strings)',
      });
    }
  }
  return problems;
}

const NOTHING: Gathered = { bases: [], target: {}, slot: { available: false, limit: 0 } };

/** Suspended, an invalid spec or no provider: nothing new starts, but a build in flight is followed to its end. */
function holdCycle(trigger: RebuildTrigger, conditions: Condition[], provider: ProviderName | undefined) {
  const previous = trigger.status ?? {};
  const suspended = trigger.spec.suspend === true;
  const status: RebuildTriggerStatus = { ...previous, conditions };
  if (suspended) status.phase = 'Suspended';
  else if (status.phase === 'Suspended') delete status.phase;
  const inFlight = previous.build && IN_FLIGHT.includes(previous.build.phase ?? '');
  const action: Action =
    inFlight && provider ? { kind: previous.build?.phase === 'Starting' ? 'resolve' : 'poll' } : { kind: 'none' };
  return { status, action, ...(inFlight ? { requeueAfterMs: 10_000 } : {}) };
}

/** The conditions the cycle's summary means: Ready, Stalled, Reconciling, Building, UpToDate. */
function cycleConditions(
  previous: readonly Condition[] | undefined,
  sum: CycleSummary,
  g: number,
  now: Date,
  bases: readonly BaseObservation[],
): Condition[] {
  const condition = (type: string, status: ConditionInput['status'], reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    observedGeneration: g,
  });
  return applyConditions(
    previous,
    [
      condition(Ready, sum.ready ? 'True' : 'False', sum.reason, sum.message),
      sum.stalled ? condition(Stalled, 'True', sum.reason, sum.message) : { remove: Stalled },
      sum.building || sum.reason === 'Verifying'
        ? condition(Reconciling, 'True', sum.reason, sum.message)
        : { remove: Reconciling },
      sum.building
        ? condition(ConditionTypes.Building, 'True', 'BuildInProgress', sum.message)
        : condition(ConditionTypes.Building, 'False', 'NoBuild', 'no build in progress'),
      sum.upToDate
        ? condition(
            ConditionTypes.UpToDate,
            'True',
            'UpToDate',
            'the target was rebuilt on the current base digests, or they have not changed',
          )
        : condition(ConditionTypes.UpToDate, 'False', sum.reason, sum.message),
      intervalCondition(
        bases.map((b) => b.budget),
        g,
      ),
    ],
    now,
  );
}

export function decideRebuildTrigger(
  trigger: RebuildTrigger,
  now: Date,
  gathered: Gathered = NOTHING,
): RebuildTriggerDecision {
  const previous = trigger.status ?? {};
  const generation = trigger.metadata?.generation ?? 0;
  const provider = providerName(trigger.spec.build);
  const requested = trigger.metadata?.annotations?.[ReconcileRequestedAt];
  const lifecycle = decideLifecycle({
    generation,
    conditions: previous.conditions,
    suspended: trigger.spec.suspend === true,
    problems: specProblems(trigger),
    acceptedMessage: '',
    now,
  });
  const finish = (
    decided: { status: RebuildTriggerStatus; action: Action; requeueAfterMs?: number },
    events: DecidedEvent[],
  ): RebuildTriggerDecision => {
    const status = decided.status;
    status.observedGeneration = generation;
    if (requested !== undefined) status.lastHandledReconcileAt = requested;
    const d: RebuildTriggerDecision = { status, events, action: decided.action };
    if (decided.requeueAfterMs !== undefined) d.requeueAfterMs = decided.requeueAfterMs;
    return d;
  };
  if (!lifecycle.proceed || !provider)
    return finish(holdCycle(trigger, lifecycle.conditions, provider), lifecycle.events);

  const manualRetry = requested !== undefined && requested !== previous.lastHandledReconcileAt;
  const cycle = decideCycle({ ...gathered, trigger, provider, now, manualRetry });
  const sum = cycle.summary;
  const conditions = cycleConditions(previous.conditions, sum, generation, now, gathered.bases);
  const events = [...cycle.events];
  const before = findCondition(previous.conditions, Ready);
  if (sum.stalled && (!before || before.reason !== sum.reason)) {
    events.push({ type: 'Warning', reason: 'Stalled', action: 'Build', note: sum.message });
  }
  return finish({ ...cycle, status: { ...cycle.status, conditions } }, events);
}
