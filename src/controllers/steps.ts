// Decisions as named steps run in order, after Flux's sub-reconcilers: each step owns one
// rule, reads the decision drafted so far and records its part; a step that settles the
// outcome says so, and the steps after it do not run. A draft is the decision's own working
// copy (never the resource read from the cache), so a decision made of steps stays a pure
// function of its input; steps do no I/O and read no clock.

/** What a step says: the steps after it still apply, or the outcome is settled. */
export type StepOutcome = 'next' | 'done';

export type Step<D> = (draft: D) => StepOutcome;

/** Runs `steps` on `draft` until one settles the outcome; true when one did. */
export function runSteps<D>(draft: D, steps: readonly Step<D>[]): boolean {
  for (const step of steps) if (step(draft) === 'done') return true;
  return false;
}
