// The IntervalMet condition: present (False) only while a registry's request budget makes the
// digest watcher check a resource's images less often than its interval asks, saying by how
// much and what to change; removed once the interval is met again. Pure.
import { ConditionTypes } from '../api/v1alpha1/index.ts';
import type { ConditionInput } from '../runtime/conditions.ts';
import { formatDuration } from '../runtime/duration.ts';
import type { BudgetShortfall } from '../registry/watcher.ts';

const RequestBudgetExceeded = 'RequestBudgetExceeded';

export function intervalCondition(
  shortfalls: readonly (BudgetShortfall | undefined)[],
  generation: number,
): ConditionInput | { remove: string } {
  // The worst stretch speaks for all: one registry per message is what a reader acts on.
  const worst = shortfalls
    .filter((s): s is BudgetShortfall => s !== undefined)
    .sort((a, b) => b.effectiveIntervalMs / b.intervalMs - a.effectiveIntervalMs / a.intervalMs)[0];
  if (!worst) return { remove: ConditionTypes.IntervalMet };
  const message =
    `${worst.registry} allows ${worst.allowedPerMinute} requests a minute and the references followed there ` +
    `need ${worst.neededPerMinute} at their intervals: checked every ${formatDuration(worst.effectiveIntervalMs)} ` +
    `instead of every ${formatDuration(worst.intervalMs)}. Raise requestsPerMinute for this registry in the ` +
    `config file, lengthen the intervals, or let the registry's webhooks say when to look.`;
  return {
    type: ConditionTypes.IntervalMet,
    status: 'False',
    reason: RequestBudgetExceeded,
    message,
    observedGeneration: generation,
  };
}
