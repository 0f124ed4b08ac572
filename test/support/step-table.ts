// Table tests for one decision step (src/controllers/steps.ts): each row gives the draft the
// step is handed, whether the step ends the run, and what it must have recorded.
import assert from 'node:assert/strict';
import type { Step, StepOutcome } from '../../src/controllers/steps.ts';

export interface StepRow<D> {
  name: string;
  draft: () => D;
  outcome: StepOutcome;
  expect?: (draft: D) => void;
}

export function stepTable<D>(step: Step<D>, rows: readonly StepRow<D>[]): void {
  for (const row of rows) {
    it(row.name, () => {
      const d = row.draft();
      assert.equal(step(d), row.outcome);
      row.expect?.(d);
    });
  }
}
