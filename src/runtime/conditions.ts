// Status conditions, as metav1.Condition and meta.SetStatusCondition: lastTransitionTime
// changes only when a condition's status changes; reason, message and observedGeneration
// are updated in place. Functions return new arrays and never mutate their input, since
// the input usually comes from an informer's cache.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** kstatus condition types, understood by Argo CD, Flux and kubectl wait. */
export const Ready = 'Ready';
export const Reconciling = 'Reconciling';
export const Stalled = 'Stalled';

const MAX_MESSAGE = 32_768;

/** An RFC 3339 timestamp with second precision, as metav1.Time serialises. */
export function timestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const message = input.message.length > MAX_MESSAGE ? input.message.slice(0, MAX_MESSAGE - 1) + '…' : input.message;
  const index = list.findIndex((c) => c.type === input.type);
  const existing = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message,
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : timestamp(now),
  };
  if (input.observedGeneration !== undefined) next.observedGeneration = input.observedGeneration;
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Applies several changes in order: a condition input sets, a type string removes. */
export function applyConditions(
  conditions: readonly Condition[] | undefined,
  changes: readonly (ConditionInput | { remove: string })[],
  now: Date,
): Condition[] {
  let list = [...(conditions ?? [])];
  for (const change of changes) {
    list = 'remove' in change ? removeCondition(list, change.remove) : setCondition(list, change, now);
  }
  return list;
}
