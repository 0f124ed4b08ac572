// The rebuild cycle of one RebuildTrigger, as a pure function of what was observed.
//
//   base digests ──change──▶ pending ──settled──▶ window open? ──▶ build slot? ──▶ Starting
//        ▲                                                                        │ (intent in status,
//        │                                                                        ▼  then the provider call)
//        └────────── Landed ◀── target changed, provenance judged ◀── Succeeded ◀─ Running
//                                                       Failed ──retry with backoff──┘ … then Stalled
//
// Everything that must survive a restart is in the returned status: the base digests, the
// pending change with its settle deadline, the build (written as Starting before the
// provider is called), the retry time, what landed. The reconciler only gathers, calls
// this, and does the single action it returns.
import {
  awaitRebuiltImage,
  finishCycle,
  followBuildInFlight,
  recordBaseDigests,
  renewPendingChange,
  reportSteadyState,
  retryFailedBuild,
  retryOnRequest,
  startCycle,
  startPendingChange,
  timeOutBuild,
  type CycleStep,
} from './cycle-steps.ts';
import type { CycleDecision, CycleInput } from './cycle-model.ts';
import { runSteps } from '../steps.ts';

/** The cycle's rules, in the order they apply; a step that settles the outcome ends the run. */
const STEPS: readonly CycleStep[] = [
  recordBaseDigests, // what the registry says of each base
  renewPendingChange, // a new revision becomes the pending change; settling restarts
  timeOutBuild, // a build past its timeout has failed
  followBuildInFlight, // a build in flight is resolved or polled (ends the run)
  awaitRebuiltImage, // a succeeded build lands once its image shows up (ends the run while waiting)
  retryOnRequest, // a requested reconcile makes a failed build pending again
  startPendingChange, // settle, window, build slot, then start (ends the run)
  retryFailedBuild, // retry with backoff, then stall (ends the run)
  reportSteadyState, // landed, or idle
];

export function decideCycle(input: CycleInput): CycleDecision {
  const draft = startCycle(input);
  runSteps(draft, STEPS);
  return finishCycle(draft);
}
