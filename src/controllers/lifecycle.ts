// The part of every Patchline reconcile that is the same for both kinds: suspension, specs
// the API server could not reject, and acceptance, expressed as
// kstatus conditions (Ready, Reconciling, Stalled) and the Events their transitions
// deserve. A pure function: the reconcilers do the I/O.
import { Reasons } from '../api/v1alpha1/index.ts';
import {
  Ready,
  Reconciling,
  Stalled,
  applyConditions,
  findCondition,
  type Condition,
  type ConditionInput,
} from '../runtime/conditions.ts';
import type { AuditDetails, EventType } from '../runtime/events.ts';
import { describeProblems, type SpecProblem } from './spec-checks.ts';

/** The object an Event is about, with the type meta that cached list items lack. */
export function withKind<T extends { apiVersion?: string; kind?: string }>(obj: T, kind: string): T {
  return { ...obj, apiVersion: obj.apiVersion ?? 'patchline.dev/v1alpha1', kind: obj.kind ?? kind };
}

export interface DecidedEvent {
  type: EventType;
  reason: string;
  action: string;
  note: string;
  /** Fields for the audit trail (digests, workload, check). */
  details?: AuditDetails;
}

export interface LifecycleInput {
  generation: number;
  conditions: readonly Condition[] | undefined;
  suspended: boolean;
  problems: readonly SpecProblem[];
  /** What the resource does, for the Ready message once accepted. */
  acceptedMessage: string;
  now: Date;
}

export interface LifecycleDecision {
  conditions: Condition[];
  events: DecidedEvent[];
  /** Whether the rest of the reconcile should act on the spec. */
  proceed: boolean;
}

export function decideLifecycle(input: LifecycleInput): LifecycleDecision {
  const g = input.generation;
  const previous = findCondition(input.conditions, Ready);
  let ready: ConditionInput;
  let stalled: ConditionInput | undefined;
  let proceed = false;
  let event: DecidedEvent | undefined;

  if (input.suspended) {
    ready = {
      type: Ready,
      status: previous?.status ?? 'Unknown',
      reason: Reasons.Suspended,
      message: 'Suspended: nothing is followed, built or rolled until spec.suspend is false.',
      observedGeneration: g,
    };
    event = { type: 'Normal', reason: Reasons.Suspended, action: 'Suspend', note: 'reconciliation suspended' };
  } else if (input.problems.length > 0) {
    const message = `Invalid spec: ${describeProblems(input.problems)}`;
    ready = { type: Ready, status: 'False', reason: Reasons.InvalidSpec, message, observedGeneration: g };
    stalled = { type: Stalled, status: 'True', reason: Reasons.InvalidSpec, message, observedGeneration: g };
    event = { type: 'Warning', reason: Reasons.InvalidSpec, action: 'Validate', note: message };
  } else {
    ready = {
      type: Ready,
      status: 'True',
      reason: Reasons.Accepted,
      message: input.acceptedMessage,
      observedGeneration: g,
    };
    event = { type: 'Normal', reason: Reasons.Accepted, action: 'Reconcile', note: input.acceptedMessage };
    proceed = true;
  }

  const conditions = applyConditions(
    input.conditions,
    [ready, stalled ?? { remove: Stalled }, { remove: Reconciling }],
    input.now,
  );
  const changed =
    !previous ||
    previous.status !== ready.status ||
    previous.reason !== ready.reason ||
    previous.message !== ready.message;
  return { conditions, events: changed && event ? [event] : [], proceed };
}
