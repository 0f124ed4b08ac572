// What a RebuildTrigger's status should be, and the one action to take: a pure function of
// the resource and what the reconciler gathered.
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
  type ConditionInput,
} from '../../runtime/conditions.ts';
import { decideLifecycle, type DecidedEvent } from '../lifecycle.ts';
import { checkDuration, checkWindow, type SpecProblem } from '../spec-checks.ts';
import { decideCycle } from './cycle.ts';
import { IN_FLIGHT, type Action, type CycleInput } from './cycle-model.ts';

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

export function decideRebuildTrigger(
  trigger: RebuildTrigger,
  now: Date,
  gathered: Gathered = NOTHING,
): RebuildTriggerDecision {
  const previous = trigger.status ?? {};
  const generation = trigger.metadata?.generation ?? 0;
  const suspended = trigger.spec.suspend === true;
  const provider = providerName(trigger.spec.build);
  const requested = trigger.metadata?.annotations?.[ReconcileRequestedAt];
  const manualRetry = requested !== undefined && requested !== previous.lastHandledReconcileAt;
  const lifecycle = decideLifecycle({
    generation,
    conditions: previous.conditions,
    suspended,
    problems: specProblems(trigger),
    acceptedMessage: '',
    now,
  });
  const finish = (
    status: RebuildTriggerStatus,
    events: DecidedEvent[],
    action: Action,
    requeueAfterMs?: number,
  ): RebuildTriggerDecision => {
    status.observedGeneration = generation;
    if (requested !== undefined) status.lastHandledReconcileAt = requested;
    const d: RebuildTriggerDecision = { status, events, action };
    if (requeueAfterMs !== undefined) d.requeueAfterMs = requeueAfterMs;
    return d;
  };

  if (!lifecycle.proceed || !provider) {
    const status: RebuildTriggerStatus = { ...previous, conditions: lifecycle.conditions };
    if (suspended) status.phase = 'Suspended';
    else if (status.phase === 'Suspended') delete status.phase;
    // A build already in flight is still followed to its end.
    const inFlight = previous.build && IN_FLIGHT.includes(previous.build.phase ?? '');
    const action: Action =
      inFlight && provider ? { kind: previous.build?.phase === 'Starting' ? 'resolve' : 'poll' } : { kind: 'none' };
    return finish(status, lifecycle.events, action, inFlight ? 10_000 : undefined);
  }

  const cycle = decideCycle({ ...gathered, trigger, provider: provider, now, manualRetry });
  const g = generation;
  const sum = cycle.summary;
  const ready: ConditionInput = {
    type: Ready,
    status: sum.ready ? 'True' : 'False',
    reason: sum.reason,
    message: sum.message,
    observedGeneration: g,
  };
  const conditions = applyConditions(
    previous.conditions,
    [
      ready,
      sum.stalled
        ? { type: Stalled, status: 'True', reason: sum.reason, message: sum.message, observedGeneration: g }
        : { remove: Stalled },
      sum.building || sum.reason === 'Verifying'
        ? { type: Reconciling, status: 'True', reason: sum.reason, message: sum.message, observedGeneration: g }
        : { remove: Reconciling },
      {
        type: ConditionTypes.Building,
        status: sum.building ? 'True' : 'False',
        reason: sum.building ? 'BuildInProgress' : 'NoBuild',
        message: sum.building ? sum.message : 'no build in progress',
        observedGeneration: g,
      },
      {
        type: ConditionTypes.UpToDate,
        status: sum.upToDate ? 'True' : 'False',
        reason: sum.upToDate ? 'UpToDate' : sum.reason,
        message: sum.upToDate
          ? 'the target was rebuilt on the current base digests, or they have not changed'
          : sum.message,
        observedGeneration: g,
      },
    ],
    now,
  );
  const events = [...cycle.events];
  const before = findCondition(previous.conditions, Ready);
  if (sum.stalled && (!before || before.reason !== sum.reason)) {
    events.push({ type: 'Warning', reason: 'Stalled', action: 'Build', note: sum.message });
  }
  return finish({ ...cycle.status, conditions }, events, cycle.action, cycle.requeueAfterMs);
}
