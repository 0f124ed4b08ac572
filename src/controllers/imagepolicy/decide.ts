// What an ImagePolicy's status should be, given the resource: a pure function.
import { ReconcileRequestedAt, type ImagePolicy, type ImagePolicyStatus } from '../../api/v1alpha1/index.ts';
import { decideLifecycle, type DecidedEvent } from '../lifecycle.ts';
import { checkDuration, checkRegex, checkSemverRange, checkWindow, type SpecProblem } from '../spec-checks.ts';

export interface ImagePolicyDecision {
  status: ImagePolicyStatus;
  events: DecidedEvent[];
}

export function specProblems(policy: ImagePolicy): SpecProblem[] {
  const spec = policy.spec;
  const problems: SpecProblem[] = [];
  problems.push(...checkSemverRange('follow.semver.range', spec.follow.semver?.range));
  problems.push(...checkRegex('follow.pattern.regex', spec.follow.pattern?.regex));
  problems.push(...checkDuration('interval', spec.interval, { minMs: 30_000 }));
  problems.push(...checkDuration('verify.maxAge', spec.verify?.maxAge, { minMs: 3_600_000 }));
  problems.push(...checkDuration('rollout.progressDeadline', spec.rollout?.progressDeadline, { minMs: 10_000 }));
  problems.push(...checkWindow('rollout.window', spec.rollout?.window));
  spec.verify?.signature?.keyless?.forEach((identity, i) => {
    problems.push(...checkRegex(`verify.signature.keyless[${i}].issuerRegExp`, identity.issuerRegExp));
    problems.push(...checkRegex(`verify.signature.keyless[${i}].subjectRegExp`, identity.subjectRegExp));
  });
  spec.verify?.vulnerabilities?.allow?.forEach((entry, i) => {
    if (Number.isNaN(Date.parse(entry.expires))) {
      problems.push({
        field: `verify.vulnerabilities.allow[${i}].expires`,
        message: `"${entry.expires}" is not a date`,
      });
    }
  });
  return problems;
}

/**
 * Checks this version cannot run yet. A policy that asks for one accepts no image at all
 * (failing closed), rather than pretending the check passed.
 */
export function unavailableChecks(policy: ImagePolicy): string | undefined {
  const missing: string[] = [];
  if (policy.spec.verify?.signature) missing.push('verify.signature');
  if (policy.spec.verify?.vulnerabilities) missing.push('verify.vulnerabilities');
  if (missing.length === 0) return undefined;
  return `${missing.join(' and ')} cannot be checked by this version of Patchline; no image is accepted until the check is available or removed from the spec.`;
}

function followDescription(policy: ImagePolicy): string {
  const f = policy.spec.follow;
  if (f.tag !== undefined) return `${policy.spec.image}:${f.tag}`;
  if (f.semver) return `${policy.spec.image} (semver ${f.semver.range})`;
  return `${policy.spec.image} (tags matching ${f.pattern?.regex ?? ''})`;
}

function workloadDescription(policy: ImagePolicy): string {
  const w = policy.spec.workloads;
  const parts: string[] = [];
  const labels = Object.entries(w.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const expressions = w.selector?.matchExpressions?.length ?? 0;
  if (labels.length > 0 || expressions > 0) {
    parts.push(`selected by ${[...labels, ...(expressions ? [`${expressions} expression(s)`] : [])].join(',')}`);
  }
  if (w.names?.length) parts.push(`named ${w.names.join(', ')}`);
  return parts.join(' and ');
}

export function decideImagePolicy(policy: ImagePolicy, now: Date): ImagePolicyDecision {
  const previous = policy.status ?? {};
  const generation = policy.metadata?.generation ?? 0;
  const lifecycle = decideLifecycle({
    generation,
    conditions: previous.conditions,
    suspended: policy.spec.suspend === true,
    problems: specProblems(policy),
    unavailable: unavailableChecks(policy),
    acceptedMessage: `Following ${followDescription(policy)} for workloads ${workloadDescription(policy)}.`,
    now,
  });
  const status: ImagePolicyStatus = { ...previous, observedGeneration: generation, conditions: lifecycle.conditions };
  const requested = policy.metadata?.annotations?.[ReconcileRequestedAt];
  if (requested !== undefined) status.lastHandledReconcileAt = requested;
  return { status, events: lifecycle.events };
}
