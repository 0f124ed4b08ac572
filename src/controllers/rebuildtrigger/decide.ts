// What a RebuildTrigger's status should be, given the resource: a pure function.
import { ReconcileRequestedAt, type RebuildTrigger, type RebuildTriggerStatus } from '../../api/v1alpha1/index.ts';
import { decideLifecycle, type DecidedEvent } from '../lifecycle.ts';
import { checkDuration, checkWindow, type SpecProblem } from '../spec-checks.ts';

export interface RebuildTriggerDecision {
  status: RebuildTriggerStatus;
  events: DecidedEvent[];
}

const PROVIDERS = [
  'acrTask',
  'githubActions',
  'cloudBuild',
  'codeBuild',
  'gitlab',
  'tekton',
  'job',
  'webhook',
] as const;

export function providerOf(trigger: RebuildTrigger): (typeof PROVIDERS)[number] | undefined {
  const build = trigger.spec.build;
  const set = PROVIDERS.filter((p) => build[p] !== undefined);
  return set.length === 1 ? set[0] : undefined;
}

export function specProblems(trigger: RebuildTrigger): SpecProblem[] {
  const spec = trigger.spec;
  const problems: SpecProblem[] = [];
  if (!providerOf(trigger)) {
    problems.push({ field: 'build', message: `exactly one build provider must be set (${PROVIDERS.join(', ')})` });
  }
  problems.push(...checkDuration('settle', spec.settle, { maxMs: 168 * 3_600_000 }));
  problems.push(...checkDuration('interval', spec.interval, { minMs: 30_000 }));
  problems.push(...checkDuration('build.timeout', spec.build.timeout, { minMs: 60_000 }));
  problems.push(...checkWindow('window', spec.window));
  return problems;
}

export function decideRebuildTrigger(trigger: RebuildTrigger, now: Date): RebuildTriggerDecision {
  const previous = trigger.status ?? {};
  const generation = trigger.metadata?.generation ?? 0;
  const suspended = trigger.spec.suspend === true;
  const bases = trigger.spec.baseImages.map((b) => b.image).join(', ');
  const lifecycle = decideLifecycle({
    generation,
    conditions: previous.conditions,
    suspended,
    problems: specProblems(trigger),
    acceptedMessage: `Rebuilds ${trigger.spec.target.image} with ${providerOf(trigger) ?? 'no provider'} when ${bases} changes.`,
    now,
  });
  const status: RebuildTriggerStatus = {
    ...previous,
    observedGeneration: generation,
    conditions: lifecycle.conditions,
  };
  if (suspended) status.phase = 'Suspended';
  else if (status.phase === 'Suspended') delete status.phase;
  const requested = trigger.metadata?.annotations?.[ReconcileRequestedAt];
  if (requested !== undefined) status.lastHandledReconcileAt = requested;
  return { status, events: lifecycle.events };
}
