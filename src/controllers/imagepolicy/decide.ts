// What an ImagePolicy's status should be, and which pins to apply, given the resource and
// what was gathered (the followed tag's digest, facts about it, the selected containers
// and what they run): a pure function.
//
//   lifecycle (suspend, spec problems) ─▶ candidate (tag, digest) ─▶ checks ─▶ accepted?
//     ─▶ rollout decision per container (rollout.ts) ─▶ conditions, events, pins
//
// A candidate that fails a check is not rolled out; the last accepted digest is kept in
// status.latest only while it is the newest, so a refused candidate holds every container
// where it is (Blocked, saying which check failed).
import {
  ConditionTypes,
  ReconcileRequestedAt,
  Reasons,
  type ImagePolicy,
  type ImagePolicyStatus,
} from '../../api/v1alpha1/index.ts';
import {
  Ready,
  Reconciling,
  Stalled,
  applyConditions,
  timestamp,
  type ConditionInput,
} from '../../runtime/conditions.ts';
import { statusEqual } from '../../runtime/status.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { parseReference, repositoryName, shortDigest } from '../../registry/reference.ts';
import { firstFailure, runChecks, type CandidateFacts } from '../../verify/checks.ts';
import type { SeverityCounts } from '../../verify/vulnerabilities.ts';
import { decideLifecycle, type DecidedEvent } from '../lifecycle.ts';
import { checkDuration, checkRegex, checkSemverRange, checkWindow, type SpecProblem } from '../spec-checks.ts';
import { windowState } from '../window.ts';
import { decideRollout, type ObservedContainer, type PinAction } from './rollout.ts';
import type { Violation } from './select.ts';

const PolicyReasons = {
  /** Waiting for the first look at the followed tag. */
  Following: 'Following',
  /** The tag list or the tag's digest cannot be read, or no tag qualifies. */
  FollowFailed: 'FollowFailed',
  /** The facts the checks need (config, provenance) cannot be read yet. */
  CheckError: 'CheckError',
  /** The newest candidate failed a check; nothing is rolled out. */
  CandidateRefused: 'CandidateRefused',
  RolloutFailed: 'RolloutFailed',
  /** Another field manager keeps setting the image back. */
  RevertLoop: 'RevertLoop',
} as const;

export interface FollowResult {
  /** The tag chosen (the fixed tag, or the best of the list). */
  tag?: string;
  digest?: string;
  /** Why there is no digest: the registry failed, or no tag qualifies. */
  error?: string;
}

export interface PolicyGathered {
  follow: FollowResult;
  /** Facts about follow.digest for the checks; undefined with factsError when unreadable. */
  facts?: CandidateFacts;
  factsError?: string;
  /** Every selected container, with what it runs and how its rollout stands. */
  observed: ObservedContainer[];
  violations: Violation[];
  /** The scans of the running digests (Trivy Operator reports), by digest. */
  scans?: ReadonlyMap<string, ContainerScan>;
}

/** What the scan of a running digest found, judged by the policy's vulnerability gate. */
export interface ContainerScan {
  counts: SeverityCounts;
  /** Findings above the maximum severity that no allow-list entry covers. */
  blocking: number;
  report: string;
  scannedAt?: string;
  message: string;
}

export interface ImagePolicyDecision {
  status: ImagePolicyStatus;
  events: DecidedEvent[];
  pins: PinAction[];
  requeueAfterMs?: number;
}

const NOTHING: PolicyGathered = { follow: {}, observed: [], violations: [] };
const MAX_VIOLATIONS = 200;

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

/** A reconcile was asked for (the annotation changed since it was last handled): look again, past caches. */
export function reconcileRequested(policy: ImagePolicy): boolean {
  const requested = policy.metadata?.annotations?.[ReconcileRequestedAt];
  return requested !== undefined && requested !== policy.status?.lastHandledReconcileAt;
}

function followDescription(policy: ImagePolicy): string {
  const f = policy.spec.follow;
  if (f.tag !== undefined) return `${policy.spec.image}:${f.tag}`;
  if (f.semver) return `${policy.spec.image} (semver ${f.semver.range})`;
  return `${policy.spec.image} (tags matching ${f.pattern?.regex ?? ''})`;
}

function condition(type: string, status: ConditionInput['status'], reason: string, message: string, g: number) {
  return { type, status, reason, message, observedGeneration: g };
}

export function decideImagePolicy(
  policy: ImagePolicy,
  now: Date,
  gathered: PolicyGathered = NOTHING,
): ImagePolicyDecision {
  const previous = policy.status ?? {};
  const generation = policy.metadata?.generation ?? 0;
  const requested = policy.metadata?.annotations?.[ReconcileRequestedAt];
  const retryRequested = reconcileRequested(policy);
  const lifecycle = decideLifecycle({
    generation,
    conditions: previous.conditions,
    suspended: policy.spec.suspend === true,
    problems: specProblems(policy),
    acceptedMessage: '',
    now,
  });
  const status: ImagePolicyStatus = { ...previous, observedGeneration: generation, conditions: lifecycle.conditions };
  if (requested !== undefined) status.lastHandledReconcileAt = requested;
  if (!lifecycle.proceed) return { status, events: lifecycle.events, pins: [] };

  const g = generation;
  const events: DecidedEvent[] = [];
  const follow = gathered.follow;
  const repository = repositoryName(parseReference(policy.spec.image));
  const what = followDescription(policy);

  // The candidate and its checks. A digest already judged keeps its verdict while the facts
  // cannot be re-read (a registry outage does not un-accept what runs).
  let latest = previous.latest;
  let refusal: string | undefined;
  let checkError: string | undefined;
  if (follow.digest) {
    const same = latest?.digest === follow.digest && latest.tag === follow.tag;
    if (gathered.facts) {
      const results = runChecks(
        policy.spec.verify,
        { image: `${policy.spec.image}:${follow.tag ?? ''}`, digest: follow.digest },
        gathered.facts,
        now,
      );
      const verified = results.every((r) => r.passed);
      const checks = results.map((r) => ({ name: r.name, passed: r.passed, message: r.message }));
      const unchanged = same && latest?.verified === verified && statusEqual(latest.checks ?? [], checks); // key order aside
      if (!unchanged) {
        latest = {
          tag: follow.tag ?? '',
          digest: follow.digest,
          shortDigest: shortDigest(follow.digest),
          verified,
          checks,
          checkedAt: timestamp(now),
        };
        const failed = firstFailure(results);
        const details = {
          tag: follow.tag ?? '',
          digest: follow.digest,
          checks: results.map((r) => `${r.name}:${r.passed ? 'passed' : 'failed'}`),
          ...(failed ? { check: failed.name } : {}),
        };
        events.push(
          failed
            ? {
                type: 'Warning',
                reason: PolicyReasons.CandidateRefused,
                action: 'Verify',
                note: `${follow.tag ?? ''}@${shortDigest(follow.digest)} refused: ${failed.name}: ${failed.message}`,
                details,
              }
            : {
                type: 'Normal',
                reason: 'CandidateAccepted',
                action: 'Verify',
                note: `${follow.tag ?? ''}@${shortDigest(follow.digest)} passed every check`,
                details,
              },
        );
      }
    } else if (!same) {
      checkError = `cannot check ${follow.tag ?? ''}@${shortDigest(follow.digest)}: ${gathered.factsError ?? 'facts not read yet'}`;
      latest = {
        tag: follow.tag ?? '',
        digest: follow.digest,
        shortDigest: shortDigest(follow.digest),
        verified: false,
        checkedAt: timestamp(now),
      };
    }
  }
  if (latest) status.latest = latest;
  if (latest && !latest.verified && !checkError) {
    const failed = latest.checks?.find((c) => !c.passed);
    refusal = failed
      ? `${latest.tag ?? ''}@${latest.shortDigest ?? ''} refused: ${failed.name}: ${failed.message ?? ''}`
      : `${latest.tag ?? ''}@${latest.shortDigest ?? ''} not checked yet`;
  }

  // The rollout.
  const accepted = latest?.verified && latest.digest ? { repository, digest: latest.digest } : undefined;
  const win = windowState(policy.spec.rollout?.window, now);
  const rollout = decideRollout({
    policy,
    now,
    observed: gathered.observed,
    windowOpen: win.open,
    retryRequested,
    ...(accepted ? { accepted } : {}),
    ...(refusal || checkError ? { heldBack: refusal ?? checkError } : {}),
  });
  events.push(...rollout.events);
  // What runs, as scanned: counts per container, and a violation for each above the gate.
  const allViolations = [...gathered.violations];
  status.workloads = rollout.workloads.map((w) => {
    const scan = w.runningDigest ? gathered.scans?.get(w.runningDigest) : undefined;
    if (!scan) return w;
    if (scan.blocking > 0) {
      allViolations.push({
        workload: `${w.kind}/${w.name}`,
        container: w.container,
        image: w.runningDigest ?? '',
        rule: 'vulnerabilities',
        message: scan.message.slice(0, 1024),
      });
    }
    const c = scan.counts;
    return {
      ...w,
      vulnerabilities: {
        critical: c.CRITICAL,
        high: c.HIGH,
        medium: c.MEDIUM,
        low: c.LOW,
        unknown: c.UNKNOWN,
        blocking: scan.blocking,
        report: scan.report,
        ...(scan.scannedAt ? { scannedAt: scan.scannedAt } : {}),
      },
    };
  });
  status.upToDate = `${rollout.upToDate.count}/${rollout.upToDate.of}`;
  if (rollout.failedDigest) status.failedDigest = rollout.failedDigest;
  else delete status.failedDigest;
  const violations = allViolations.slice(0, MAX_VIOLATIONS);
  if (violations.length > 0) status.violations = violations;
  else delete status.violations;

  // Conditions.
  const states = rollout.workloads.map((w) => w.state);
  const failed = states.includes('Failed');
  const revertLoop = rollout.workloads.find((w) => w.state === 'Blocked' && w.revertedBy && (w.reverts ?? 0) >= 2);
  let ready: ConditionInput;
  let stalled: ConditionInput | undefined;
  if (!latest && follow.error) {
    ready = condition(Ready, 'False', PolicyReasons.FollowFailed, `Following ${what}: ${follow.error}`, g);
  } else if (!latest) {
    ready = condition(Ready, 'Unknown', PolicyReasons.Following, `Following ${what}: looking up the digest`, g);
  } else if (checkError) {
    ready = condition(Ready, 'False', PolicyReasons.CheckError, checkError, g);
  } else if (refusal) {
    ready = condition(Ready, 'False', PolicyReasons.CandidateRefused, refusal, g);
  } else if (revertLoop) {
    const message = `${revertLoop.kind}/${revertLoop.name}: ${revertLoop.message ?? ''}`;
    ready = condition(Ready, 'False', PolicyReasons.RevertLoop, message, g);
    stalled = condition(Stalled, 'True', PolicyReasons.RevertLoop, message, g);
  } else if (failed) {
    const message = `the rollout of ${shortDigest(rollout.failedDigest ?? latest.digest ?? '')} failed; it is not retried until a newer digest is accepted or a reconcile is requested`;
    ready = condition(Ready, 'False', PolicyReasons.RolloutFailed, message, g);
    stalled = condition(Stalled, 'True', PolicyReasons.RolloutFailed, message, g);
  } else {
    const followError = follow.error ? ` (the registry cannot be read now: ${follow.error})` : '';
    ready = condition(
      Ready,
      'True',
      Reasons.Accepted,
      `Following ${what}: ${latest.tag ?? ''}@${latest.shortDigest ?? ''} accepted${followError}.`,
      g,
    );
  }
  const rolling = rollout.rolling > 0;
  const progressing: ConditionInput = rolling
    ? condition(ConditionTypes.RolloutProgressing, 'True', 'Rolling', `${rollout.rolling} workload(s) rolling`, g)
    : failed
      ? condition(ConditionTypes.RolloutProgressing, 'False', PolicyReasons.RolloutFailed, 'a rollout failed', g)
      : states.includes('PendingApproval')
        ? condition(
            ConditionTypes.RolloutProgressing,
            'False',
            'PendingApproval',
            'waiting for the digest to be approved',
            g,
          )
        : states.length > 0 && states.every((s) => s === 'UpToDate')
          ? condition(ConditionTypes.RolloutProgressing, 'False', 'Complete', 'every container runs the digest', g)
          : condition(ConditionTypes.RolloutProgressing, 'False', 'Waiting', waitingMessage(rollout.workloads), g);
  const compliant: ConditionInput =
    violations.length === 0
      ? condition(
          ConditionTypes.Compliant,
          'True',
          'NoViolations',
          states.length === 0
            ? 'no workload container is selected'
            : 'every selected container runs an acceptable image',
          g,
        )
      : condition(
          ConditionTypes.Compliant,
          'False',
          'Violations',
          `${allViolations.length} container(s) break the policy, first ${violations[0]!.workload}/${violations[0]!.container}: ${violations[0]!.message ?? violations[0]!.rule}`,
          g,
        );
  const wasCompliant = previous.conditions?.find((c) => c.type === ConditionTypes.Compliant);
  if (compliant.status === 'False' && wasCompliant?.message !== compliant.message) {
    events.push({
      type: 'Warning',
      reason: 'PolicyViolation',
      action: 'Audit',
      note: compliant.message,
      details: { violations: allViolations.slice(0, 20).map((v) => `${v.workload}/${v.container}:${v.rule}`) },
    });
  }
  status.conditions = applyConditions(
    status.conditions,
    [
      ready,
      stalled ?? { remove: Stalled },
      rolling || (!latest && !follow.error)
        ? condition(Reconciling, 'True', rolling ? 'Rolling' : PolicyReasons.Following, ready.message, g)
        : { remove: Reconciling },
      compliant,
      progressing,
    ],
    now,
  );
  // The spec's own events (suspension, invalid spec) were returned above; once acting, the
  // events are the candidate's, the rollout's and a failing registry's.
  const before = previous.conditions?.find((c) => c.type === Ready);
  if (ready.reason === PolicyReasons.FollowFailed && before?.reason !== ready.reason) {
    events.push({ type: 'Warning', reason: ready.reason, action: 'Follow', note: ready.message });
  }

  // When to look again: the interval (tag lists, age checks), the rollout, the window.
  let requeue = parseDuration(policy.spec.interval ?? '5m');
  if (rollout.requeueAfterMs !== undefined) requeue = Math.min(requeue, rollout.requeueAfterMs);
  if (!win.open && win.opensAt && states.includes('Pending'))
    requeue = Math.min(requeue, Math.max(1_000, win.opensAt.getTime() - now.getTime()));
  return { status, events, pins: rollout.pins, requeueAfterMs: requeue };
}

function waitingMessage(workloads: ImagePolicyStatus['workloads']): string {
  const w = workloads?.find((x) => x.state !== 'UpToDate');
  return w ? `${w.kind}/${w.name}/${w.container}: ${w.message ?? w.state ?? ''}` : 'no workload container is selected';
}
