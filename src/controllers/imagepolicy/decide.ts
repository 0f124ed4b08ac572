// What an ImagePolicy's status should be, and which pins to apply, given the resource and
// what was gathered (the followed tag's digest, facts about it, the selected containers
// and what they run): a pure function.
//
//   lifecycle (suspend, spec problems) ─▶ candidate (tag, digest) ─▶ checks ─▶ accepted?
//     ─▶ rollout decision per container (rollout.ts) ─▶ scans ─▶ conditions, events, pins
//
// Each arrow is a named step (STEPS below, run by ../steps.ts), owning its rules.
//
// A candidate that fails a check is not rolled out; the last accepted digest is kept in
// status.latest only while it is the newest, so a refused candidate holds every container
// where it is (Blocked, saying which check failed).
import type { BudgetShortfall } from '../../registry/watcher.ts';
import { intervalCondition } from '../interval-budget.ts';
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
import { firstFailure, runChecks, type CandidateFacts, type CheckResult } from '../../verify/checks.ts';
import type { SeverityCounts } from '../../verify/vulnerabilities.ts';
import { decideLifecycle, type DecidedEvent } from '../lifecycle.ts';
import {
  checkDuration,
  checkImage,
  checkRegex,
  checkSemverRange,
  checkWindow,
  type SpecProblem,
} from '../spec-checks.ts';
import { windowState } from '../window.ts';
import { runSteps, type Step } from '../steps.ts';
import {
  decideRollout,
  type GitOpsRecord,
  type ObservedContainer,
  type PinAction,
  type RolloutDecision,
} from './rollout.ts';
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
  /** The ServiceAccount Patchline acts as may not patch the workloads (RBAC). */
  PinForbidden: 'PinForbidden',
  /** A registry scanner is still scanning the newest candidate; it waits, up to scanTimeout. */
  ScanPending: 'ScanPending',
} as const;

export interface FollowResult {
  /** The tag chosen (the fixed tag, or the best of the list). */
  tag?: string;
  digest?: string;
  /** Why there is no digest: the registry failed, or no tag qualifies. */
  error?: string;
  /** The registry's request budget checks the tag less often than the interval asks. */
  budget?: BudgetShortfall;
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
  /** The secret scans of the running digests (ExposedSecretReports), by digest. */
  secretScans?: ReadonlyMap<string, ContainerSecrets>;
  /** GitOps mode: what the policy's GitWriteBack reports for it. */
  gitOps?: GitOpsRecord;
  /** The last pins were refused by RBAC (the ServiceAccount acted as may not patch): why. */
  pinsForbidden?: string;
}

/** What the secret scan of a running digest found, judged by verify.secrets: counts and rule ids only. */
export interface ContainerSecrets {
  counts: SeverityCounts;
  blocking: number;
  rules: string[];
  report: string;
  message: string;
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
  problems.push(...checkImage('image', spec.image));
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

type Latest = NonNullable<ImagePolicyStatus['latest']>;

/** The decision being made: the input, and what the steps so far decided. */
export interface PolicyDraft {
  readonly policy: ImagePolicy;
  readonly now: Date;
  readonly gathered: PolicyGathered;
  readonly generation: number;
  readonly status: ImagePolicyStatus;
  readonly events: DecidedEvent[];
  /** The newest candidate and its verdict (the previous one while nothing newer is judged). */
  latest?: Latest;
  /** Why the newest candidate is refused: a check failed, or it is not checked yet. */
  refusal?: string;
  /** What the newest candidate waits for (a scan in progress); nothing is refused yet. */
  waiting?: string;
  /** The facts the checks need could not be read: judged later. */
  checkError?: string;
  rollout?: RolloutDecision;
  /** Every violation, the scans' included; status keeps the first MAX_VIOLATIONS. */
  violations: Violation[];
  pins: PinAction[];
  requeueAfterMs?: number;
}

export type PolicyStep = Step<PolicyDraft>;

export function startPolicy(policy: ImagePolicy, now: Date, gathered: PolicyGathered): PolicyDraft {
  const previous = policy.status ?? {};
  const generation = policy.metadata?.generation ?? 0;
  const status: ImagePolicyStatus = { ...previous, observedGeneration: generation };
  const requested = policy.metadata?.annotations?.[ReconcileRequestedAt];
  if (requested !== undefined) status.lastHandledReconcileAt = requested;
  return {
    policy,
    now,
    gathered,
    generation,
    status,
    events: [],
    ...(previous.latest ? { latest: previous.latest } : {}),
    violations: [],
    pins: [],
  };
}

/** Suspension and specs the API server could not reject end the decision here. */
export const applyLifecycle: PolicyStep = (d) => {
  const lifecycle = decideLifecycle({
    generation: d.generation,
    conditions: d.policy.status?.conditions,
    suspended: d.policy.spec.suspend === true,
    problems: specProblems(d.policy),
    acceptedMessage: '',
    now: d.now,
  });
  d.status.conditions = lifecycle.conditions;
  if (lifecycle.proceed) return 'next';
  d.events.push(...lifecycle.events);
  return 'done';
};

/** The Event a newly judged candidate deserves: accepted, or refused naming the check. */
function verdictEvent(follow: FollowResult, digest: string, results: readonly CheckResult[]): DecidedEvent {
  const failed = results.find((r) => !r.passed && !r.pending) ?? firstFailure(results);
  const what = `${follow.tag ?? ''}@${shortDigest(digest)}`;
  const details = {
    tag: follow.tag ?? '',
    digest,
    checks: results.map((r) => `${r.name}:${r.passed ? 'passed' : 'failed'}`),
    ...(failed ? { check: failed.name } : {}),
  };
  if (failed?.pending)
    return {
      type: 'Normal',
      reason: PolicyReasons.ScanPending,
      action: 'Verify',
      note: `${what} waits: ${failed.message}`,
      details,
    };
  return failed
    ? {
        type: 'Warning',
        reason: PolicyReasons.CandidateRefused,
        action: 'Verify',
        note: `${what} refused: ${failed.name}: ${failed.message}`,
        details,
      }
    : { type: 'Normal', reason: 'CandidateAccepted', action: 'Verify', note: `${what} passed every check`, details };
}

/**
 * The candidate and its checks. A digest already judged keeps its verdict while the facts
 * cannot be re-read (a registry outage does not un-accept what runs).
 */
export const judgeCandidate: PolicyStep = (d) => {
  const { follow, facts } = d.gathered;
  const digest = follow.digest;
  if (!digest) return 'next';
  const same = d.latest?.digest === digest && d.latest.tag === follow.tag;
  const judged = (verified: boolean, checks?: Latest['checks'], pendingSince?: Date): Latest => ({
    tag: follow.tag ?? '',
    digest,
    shortDigest: shortDigest(digest),
    verified,
    ...(checks ? { checks } : {}),
    checkedAt: timestamp(d.now),
    ...(pendingSince ? { pendingSince: timestamp(pendingSince) } : {}),
  });
  if (facts) {
    const candidate = { image: `${d.policy.spec.image}:${follow.tag ?? ''}`, digest };
    const results = runChecks(d.policy.spec.verify, candidate, facts, d.now);
    const verified = results.every((r) => r.passed);
    const checks = results.map((r) => ({
      name: r.name,
      passed: r.passed,
      message: r.message,
      ...(r.pending ? { pending: true } : {}),
      ...(r.findings ? { findings: r.findings } : {}),
    }));
    const unchanged = same && d.latest?.verified === verified && statusEqual(d.latest.checks ?? [], checks); // key order aside
    if (!unchanged) {
      const pending = results.some((r) => r.pending) ? facts.scanPending?.since : undefined;
      d.latest = judged(verified, checks, pending);
      d.events.push(verdictEvent(follow, digest, results));
    }
  } else if (!same) {
    d.checkError = `cannot check ${follow.tag ?? ''}@${shortDigest(digest)}: ${d.gathered.factsError ?? 'facts not read yet'}`;
    d.latest = judged(false);
  }
  return 'next';
};

/** A candidate not verified (and not waiting for its facts) holds every container where it is. */
export const explainRefusal: PolicyStep = (d) => {
  const latest = d.latest;
  if (latest) d.status.latest = latest;
  if (!latest || latest.verified || d.checkError) return 'next';
  const failed = latest.checks?.find((c) => !c.passed && !c.pending);
  const pending = latest.checks?.find((c) => c.pending);
  if (!failed && pending) {
    d.waiting = `${latest.tag ?? ''}@${latest.shortDigest ?? ''} waits: ${pending.name}: ${pending.message ?? ''}`;
    return 'next';
  }
  d.refusal = failed
    ? `${latest.tag ?? ''}@${latest.shortDigest ?? ''} refused: ${failed.name}: ${failed.message ?? ''}`
    : `${latest.tag ?? ''}@${latest.shortDigest ?? ''} not checked yet`;
  return 'next';
};

/** Every selected container's rollout (rollout.ts): states, pins, the failed digest. */
export const planRollout: PolicyStep = (d) => {
  const latest = d.latest;
  const repository = repositoryName(parseReference(d.policy.spec.image));
  const accepted = latest?.verified && latest.digest ? { repository, digest: latest.digest } : undefined;
  const heldBack = d.refusal ?? d.checkError ?? d.waiting;
  const rollout = decideRollout({
    policy: d.policy,
    now: d.now,
    observed: d.gathered.observed,
    windowOpen: windowState(d.policy.spec.rollout?.window, d.now).open,
    retryRequested: reconcileRequested(d.policy),
    ...(accepted ? { accepted } : {}),
    ...(heldBack ? { heldBack } : {}),
    ...(d.gathered.gitOps ? { gitOps: d.gathered.gitOps } : {}),
  });
  d.rollout = rollout;
  d.events.push(...rollout.events);
  d.pins = rollout.pins;
  d.status.upToDate = `${rollout.upToDate.count}/${rollout.upToDate.of}`;
  if (rollout.failedDigest) d.status.failedDigest = rollout.failedDigest;
  else delete d.status.failedDigest;
  return 'next';
};

type GitOpsStatus = NonNullable<ImagePolicyStatus['gitOps']>;
type GitValue = NonNullable<GitOpsStatus['desired']>;

/**
 * GitOps mode: the value git should say for this policy. The accepted digest once the window is
 * open (whether or not a selected workload runs here: git is the source of truth for every
 * cluster it feeds), the previous value when a rollout failed (a revert), else what it was.
 */
function desiredInGit(d: PolicyDraft, before: GitOpsStatus | undefined): GitValue | undefined {
  const latest = d.latest;
  const revertTo = d.rollout?.revertTo;
  if (revertTo) {
    const tag = before?.previous?.digest === revertTo ? before.previous.tag : undefined;
    return { digest: revertTo, ...(tag ? { tag } : {}), reason: 'Revert' };
  }
  const failed = d.status.failedDigest;
  const windowOpen = windowState(d.policy.spec.rollout?.window, d.now).open;
  if (latest?.verified && latest.digest && latest.digest !== failed && windowOpen) {
    return { digest: latest.digest, ...(latest.tag ? { tag: latest.tag } : {}), reason: 'Rollout' };
  }
  return before?.desired;
}

/** GitOps mode: status.gitOps (desired value, the value before it, the commit that carries it). */
export const planGitOps: PolicyStep = (d) => {
  if (d.policy.spec.rollout?.mode !== 'GitOps') {
    delete d.status.gitOps;
    return 'next';
  }
  const before = d.policy.status?.gitOps;
  const wanted = desiredInGit(d, before);
  const next: GitOpsStatus = {};
  const same =
    wanted && before?.desired && wanted.digest === before.desired.digest && wanted.reason === before.desired.reason;
  if (wanted)
    next.desired = { ...wanted, since: same && before?.desired?.since ? before.desired.since : timestamp(d.now) };
  const changedDigest = wanted && before?.desired?.digest && wanted.digest !== before.desired.digest;
  const previous = changedDigest && wanted.reason === 'Rollout' ? before?.desired : before?.previous;
  if (previous?.digest) next.previous = { digest: previous.digest, ...(previous.tag ? { tag: previous.tag } : {}) };
  const written = d.gathered.gitOps?.written;
  if (written?.commit && wanted && written.digest === wanted.digest) {
    next.commit = written.commit;
    if (written.committedAt) next.committedAt = written.committedAt;
  }
  if (written?.message) next.message = written.message.slice(0, 1024);
  if (written?.pullRequest && wanted && written.digest === wanted.digest) next.pullRequest = written.pullRequest;
  d.status.gitOps = next;
  if (wanted?.digest && !same) {
    const writeBack = d.gathered.gitOps?.writeBack ?? '';
    const revert = wanted.reason === 'Revert';
    d.events.push({
      type: revert ? 'Warning' : 'Normal',
      reason: revert ? 'GitRevertRequested' : 'GitWriteRequested',
      action: 'Rollout',
      note: `asking GitWriteBack ${writeBack} to write ${wanted.tag ? `${wanted.tag}@` : ''}${shortDigest(wanted.digest)}${revert ? ' (a revert of the failed rollout)' : ''}`,
      details: { digest: wanted.digest, ...(wanted.tag ? { tag: wanted.tag } : {}) },
    });
  }
  return 'next';
};

/** What runs, as scanned: counts per container, and a violation for each above the gate. */
export const mapScans: PolicyStep = (d) => {
  d.violations = [...d.gathered.violations];
  d.status.workloads = (d.rollout?.workloads ?? []).map((w) => withSecrets(d, withScan(d, w)));
  const kept = d.violations.slice(0, MAX_VIOLATIONS);
  if (kept.length > 0) d.status.violations = kept;
  else delete d.status.violations;
  return 'next';
};

type WorkloadStatusEntry = NonNullable<ImagePolicyStatus['workloads']>[number];

/** A container's vulnerability counts, and a violation when the scan is above the gate. */
function withScan(d: PolicyDraft, w: WorkloadStatusEntry): WorkloadStatusEntry {
  const scan = w.runningDigest ? d.gathered.scans?.get(w.runningDigest) : undefined;
  if (!scan) return w;
  if (scan.blocking > 0) {
    d.violations.push({
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
}

/** A container's exposed secrets (counts and rule ids), and a violation when above the gate. */
function withSecrets(d: PolicyDraft, w: WorkloadStatusEntry): WorkloadStatusEntry {
  const found = w.runningDigest ? d.gathered.secretScans?.get(w.runningDigest) : undefined;
  if (!found) return w;
  if (found.blocking > 0) {
    d.violations.push({
      workload: `${w.kind}/${w.name}`,
      container: w.container,
      image: w.runningDigest ?? '',
      rule: 'secrets',
      message: found.message.slice(0, 1024),
    });
  }
  const c = found.counts;
  return {
    ...w,
    secrets: {
      critical: c.CRITICAL,
      high: c.HIGH,
      medium: c.MEDIUM,
      low: c.LOW,
      blocking: found.blocking,
      rules: found.rules.slice(0, 20),
      report: found.report,
    },
  };
}

/** Ready (and Stalled when it takes a person): the first of follow, checks, revert loop, failure, accepted. */
function readiness(d: PolicyDraft): { ready: ConditionInput; stalled?: ConditionInput } {
  const { follow } = d.gathered;
  const g = d.generation;
  const what = followDescription(d.policy);
  const workloads = d.rollout?.workloads ?? [];
  const latest = d.latest;
  if (!latest && follow.error)
    return { ready: condition(Ready, 'False', PolicyReasons.FollowFailed, `Following ${what}: ${follow.error}`, g) };
  if (!latest)
    return {
      ready: condition(Ready, 'Unknown', PolicyReasons.Following, `Following ${what}: looking up the digest`, g),
    };
  if (d.checkError) return { ready: condition(Ready, 'False', PolicyReasons.CheckError, d.checkError, g) };
  if (d.refusal) return { ready: condition(Ready, 'False', PolicyReasons.CandidateRefused, d.refusal, g) };
  if (d.waiting) return { ready: condition(Ready, 'False', PolicyReasons.ScanPending, d.waiting, g) };
  const revertLoop = workloads.find((w) => w.state === 'Blocked' && w.revertedBy && (w.reverts ?? 0) >= 2);
  if (revertLoop) {
    const message = `${revertLoop.kind}/${revertLoop.name}: ${revertLoop.message ?? ''}`;
    return {
      ready: condition(Ready, 'False', PolicyReasons.RevertLoop, message, g),
      stalled: condition(Stalled, 'True', PolicyReasons.RevertLoop, message, g),
    };
  }
  if (workloads.some((w) => w.state === 'Failed')) {
    const message = `the rollout of ${shortDigest(d.rollout?.failedDigest ?? latest.digest ?? '')} failed; it is not retried until a newer digest is accepted or a reconcile is requested`;
    return {
      ready: condition(Ready, 'False', PolicyReasons.RolloutFailed, message, g),
      stalled: condition(Stalled, 'True', PolicyReasons.RolloutFailed, message, g),
    };
  }
  if (d.gathered.pinsForbidden) {
    const message = d.gathered.pinsForbidden;
    return {
      ready: condition(Ready, 'False', PolicyReasons.PinForbidden, message, g),
      stalled: condition(Stalled, 'True', PolicyReasons.PinForbidden, message, g),
    };
  }
  const followError = follow.error ? ` (the registry cannot be read now: ${follow.error})` : '';
  const message = `Following ${what}: ${latest.tag ?? ''}@${latest.shortDigest ?? ''} accepted${followError}.`;
  return { ready: condition(Ready, 'True', Reasons.Accepted, message, g) };
}

/** RolloutProgressing: rolling, failed, waiting for approval, complete, or waiting for what. */
function progressing(d: PolicyDraft): ConditionInput {
  const g = d.generation;
  const type = ConditionTypes.RolloutProgressing;
  const workloads = d.rollout?.workloads ?? [];
  const states = workloads.map((w) => w.state);
  if ((d.rollout?.rolling ?? 0) > 0)
    return condition(type, 'True', 'Rolling', `${d.rollout?.rolling} workload(s) rolling`, g);
  if (states.includes('Failed')) return condition(type, 'False', PolicyReasons.RolloutFailed, 'a rollout failed', g);
  if (states.includes('PendingApproval'))
    return condition(type, 'False', 'PendingApproval', 'waiting for the digest to be approved', g);
  if (states.length > 0 && states.every((s) => s === 'UpToDate'))
    return condition(type, 'False', 'Complete', 'every container runs the digest', g);
  return condition(type, 'False', 'Waiting', waitingMessage(workloads), g);
}

/** Compliant: every selected container runs an acceptable image; a PolicyViolation Event when that changes. */
function compliance(d: PolicyDraft): ConditionInput {
  const g = d.generation;
  const type = ConditionTypes.Compliant;
  const first = d.violations[0];
  if (!first) {
    const selected = (d.rollout?.workloads.length ?? 0) > 0;
    const message = selected
      ? 'every selected container runs an acceptable image'
      : 'no workload container is selected';
    return condition(type, 'True', 'NoViolations', message, g);
  }
  const message = `${d.violations.length} container(s) break the policy, first ${first.workload}/${first.container}: ${first.message ?? first.rule}`;
  const before = d.policy.status?.conditions?.find((c) => c.type === type);
  if (before?.message !== message) {
    d.events.push({
      type: 'Warning',
      reason: 'PolicyViolation',
      action: 'Audit',
      note: message,
      details: { violations: d.violations.slice(0, 20).map((v) => `${v.workload}/${v.container}:${v.rule}`) },
    });
  }
  return condition(type, 'False', 'Violations', message, g);
}

/** The conditions, and the Warning a registry that starts failing deserves. */
export const setConditions: PolicyStep = (d) => {
  const { ready, stalled } = readiness(d);
  const rolling = (d.rollout?.rolling ?? 0) > 0;
  const looking = !d.latest && !d.gathered.follow.error;
  const compliant = compliance(d);
  d.status.conditions = applyConditions(
    d.status.conditions,
    [
      ready,
      stalled ?? { remove: Stalled },
      rolling || looking || d.waiting
        ? condition(
            Reconciling,
            'True',
            rolling ? 'Rolling' : d.waiting ? PolicyReasons.ScanPending : PolicyReasons.Following,
            ready.message,
            d.generation,
          )
        : { remove: Reconciling },
      compliant,
      progressing(d),
      intervalCondition([d.gathered.follow.budget], d.generation),
    ],
    d.now,
  );
  // The spec's own events (suspension, invalid spec) ended the decision earlier; once acting,
  // the events are the candidate's, the rollout's and a failing registry's.
  const before = d.policy.status?.conditions?.find((c) => c.type === Ready);
  if (ready.reason === PolicyReasons.FollowFailed && before?.reason !== ready.reason) {
    d.events.push({ type: 'Warning', reason: ready.reason, action: 'Follow', note: ready.message });
  }
  return 'next';
};

/** When to look again: the interval (tag lists, age checks), the rollout, the window. */
export const scheduleNextLook: PolicyStep = (d) => {
  // At rest nothing is looked at again on a timer: every change that matters wakes the policy
  // (a new digest or a registry that stops answering from the digest watcher, which checks at
  // the interval; workloads, pods, scans, the GitWriteBack, the spec, a requested reconcile).
  // Only what time alone changes is scheduled: the candidate growing past verify.maxAge.
  // 10,000 settled policies then cost no reconcile at all.
  if (atRest(d)) {
    const agesOutInMs = ageLimitIn(d);
    if (agesOutInMs !== undefined) d.requeueAfterMs = agesOutInMs;
    return 'next';
  }
  let requeue = parseDuration(d.policy.spec.interval ?? '5m');
  if (d.rollout?.requeueAfterMs !== undefined) requeue = Math.min(requeue, d.rollout.requeueAfterMs);
  // A scan in progress is asked about again soon (its answer is cached for 30 s).
  if (d.waiting) requeue = Math.min(requeue, 30_000);
  const win = windowState(d.policy.spec.rollout?.window, d.now);
  if (!win.open && win.opensAt && d.rollout?.workloads.some((w) => w.state === 'Pending'))
    requeue = Math.min(requeue, Math.max(1_000, win.opensAt.getTime() - d.now.getTime()));
  d.requeueAfterMs = requeue;
  return 'next';
};

/**
 * Settled: the followed digest read without error, judged and accepted, and every governed
 * container on it with no rollout followed. Anything else (a refusal re-asked after its cache
 * expires, facts that could not be read, a rollout, a window, a GitOps change waiting) keeps
 * looking at the interval.
 */
function atRest(d: PolicyDraft): boolean {
  const follow = d.gathered.follow;
  return (
    follow.digest !== undefined &&
    follow.error === undefined &&
    d.gathered.factsError === undefined &&
    d.checkError === undefined &&
    d.latest?.digest === follow.digest &&
    d.latest.verified === true &&
    d.rollout?.requeueAfterMs === undefined &&
    (d.status.workloads ?? []).every((w) => w.state === 'UpToDate')
  );
}

/** Milliseconds until the accepted candidate is older than verify.maxAge (just past it); undefined without a limit. */
function ageLimitIn(d: PolicyDraft): number | undefined {
  const maxAge = d.policy.spec.verify?.maxAge;
  const created = d.gathered.facts?.created;
  if (!maxAge || !created) return undefined;
  return Math.max(1_000, created.getTime() + parseDuration(maxAge) - d.now.getTime() + 1_000);
}

/** The decision's rules, in the order they apply. */
const STEPS: readonly PolicyStep[] = [
  applyLifecycle, // suspended or invalid: ends here
  judgeCandidate, // the followed digest through the checks of spec.verify
  explainRefusal, // a refused candidate holds every container
  planRollout, // per container: follow, roll back, or pin when allowed (rollout.ts)
  planGitOps, // GitOps mode: what git should say, and the commit that says it
  mapScans, // vulnerability counts of what runs, violations above the gate
  setConditions, // Ready, Stalled, Reconciling, Compliant, RolloutProgressing, IntervalMet
  scheduleNextLook, // interval, rollout, window
];

export function decideImagePolicy(
  policy: ImagePolicy,
  now: Date,
  gathered: PolicyGathered = NOTHING,
): ImagePolicyDecision {
  const d = startPolicy(policy, now, gathered);
  runSteps(d, STEPS);
  const decision: ImagePolicyDecision = { status: d.status, events: d.events, pins: d.pins };
  if (d.requeueAfterMs !== undefined) decision.requeueAfterMs = d.requeueAfterMs;
  return decision;
}

function waitingMessage(workloads: ImagePolicyStatus['workloads']): string {
  const w = workloads?.find((x) => x.state !== 'UpToDate');
  return w ? `${w.kind}/${w.name}/${w.container}: ${w.message ?? w.state ?? ''}` : 'no workload container is selected';
}
