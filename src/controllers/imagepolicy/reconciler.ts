// ImagePolicy reconciler: gather (the followed tag's digest from the shared watcher, the tag
// list when following a range or pattern, facts about the candidate, the selected containers
// and what their pods run), decide (pure: decide.ts, rollout.ts), act (write status first —
// it records the previous digest a rollback needs — then pin the containers decided),
// report (Events for transitions).
import {
  ImagePolicyType,
  PinsFinalizer,
  type GitWriteBack,
  type ImagePolicy,
  type RebuildTrigger,
} from '../../api/v1alpha1/index.ts';
import type { CredentialSource } from '../../registry/auth/credentials.ts';
import { parseReference, repositoryName, type ImageReference } from '../../registry/reference.ts';
import { parseDuration } from '../../runtime/duration.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { ObjectKey } from '../../runtime/kube-types.ts';
import { counter, exponentialBuckets, histogram, type Registry } from '../../runtime/metrics.ts';
import {
  done,
  requeueAfter,
  type ReconcileContext,
  type ReconcileResult,
  type Reconciler,
} from '../../runtime/reconciler.ts';
import type { StatusWriter } from '../../runtime/status.ts';
import { keptPins, pinAnnotationValue, type KeptPin, type PinnedWorkload, type PinRequest } from '../../rollout/pin.ts';
import { digestOfImageID, repositoryOf } from '../../rollout/running.ts';
import type { Pod, Workload } from '../../rollout/workloads.ts';
import type { CandidateFacts, RunAsContainer } from '../../verify/checks.ts';
import type { Authority } from '../../verify/signatures.ts';
import { gateVulnerabilities } from '../../verify/vulnerabilities.ts';
import type { ImageTrust } from '../image-trust.ts';
import type { RegistryScans, ScannerSpec } from '../registry-scans.ts';
import type { ScanJobs } from '../scan-jobs.ts';
import type { ReportAliasWatch } from '../report-aliases.ts';
import { scanJobName, type OnDemandScanSpec } from '../../verify/scan-job.ts';
import type { SlimReport } from '../vulnerability-reports.ts';
import { judge } from '../../verify/provenance.ts';
import type { CredentialResolver } from '../credentials.ts';
import { withKind } from '../lifecycle.ts';
import type { RegistryFacts } from '../registry-facts.ts';
import type { TagLists } from '../tag-lists.ts';
import type { ResourceWatches } from '../watches.ts';
import {
  decideImagePolicy,
  reconcileRequested,
  specProblems,
  type ContainerScan,
  type ContainerSecrets,
  type FollowResult,
  type PolicyGathered,
} from './decide.ts';
import { chooseTag } from './follow.ts';
import type { GitOpsRecord, PinAction } from './rollout.ts';
import { observeContainers } from './observe.ts';
import { containerUser, selectContainers, violationsOf, type SelectedContainer } from './select.ts';
import { isForbidden } from '../../runtime/errors.ts';
import { reportsOfImage, scanOfImage } from '../vulnerability-reports.ts';
import type { SlimSecretReport } from '../secret-reports.ts';
import { gateSecrets } from '../../verify/secrets.ts';
import { describeUser } from '../../verify/run-as-user.ts';
import { actorFor, describeActor, type Actor } from '../../runtime/impersonation.ts';

export interface ImagePolicyReconcilerDeps {
  get(key: ObjectKey): ImagePolicy | undefined;
  status: StatusWriter;
  events: EventRecorder;
  /** The cached workloads (every kind) and pods of a namespace. */
  workloads(namespace: string): Workload[];
  pods(namespace: string): Pod[];
  /** The cached RebuildTriggers of a namespace: digests they land, bases for provenance. */
  triggers(namespace: string): RebuildTrigger[];
  watches: ResourceWatches;
  tagLists: TagLists;
  credentials: CredentialResolver;
  facts: RegistryFacts;
  /** Pins a container; `actor` undefined: with the operator's own rights. */
  pin(request: PinRequest, signal: AbortSignal, actor: Actor | undefined): Promise<void>;
  /** Releases a deleted policy's pins on a workload (rollout/pin.ts); whether it had any. */
  release(workload: PinnedWorkload, policy: string, signal: AbortSignal, actor: Actor | undefined): Promise<boolean>;
  /** The ServiceAccount to act as when a policy names none (--default-service-account); empty: the operator. */
  defaultServiceAccount?: string;
  /** A JSON patch of the ImagePolicy itself (its finalizer). */
  patch(key: ObjectKey, operations: readonly JsonPatchOperation[], signal: AbortSignal): Promise<void>;
  /** Signatures and attestations: keys from Secrets, artefacts from registries, the trust root. */
  trust: ImageTrust;
  /** Registry scanners (verify.vulnerabilities.scanners); absent: none are asked. */
  registryScans?: RegistryScans;
  /** The scanner the config file names for a registry host (asked when a policy names none). */
  registryScanner?(host: string): ScannerSpec | undefined;
  /** On-demand scan Jobs (verify.vulnerabilities.onDemandScan); absent: none are made. */
  scanJobs?: ScanJobs;
  /** Whether the informer cache holds a Job (a scan Job left to delete). */
  jobCached?(namespace: string, name: string): boolean;
  /** Where the digests whose reports stand for what a policy runs are recorded (to be woken by them). */
  reportAliases?: ReportAliasWatch;
  /** The newest ExposedSecretReport on a digest, preferring the namespace given (absent: none are read). */
  secretReports?(digest: string, namespace: string): SlimSecretReport | undefined;
  /** The newest Trivy Operator report on a digest, preferring the namespace given. */
  reports(digest: string, namespace: string): SlimReport | undefined;
  /** The cached GitWriteBack a GitOps policy names. */
  writeBack(key: ObjectKey): GitWriteBack | undefined;
  registry?: Registry;
  now?: () => Date;
}

/** The signature spec that trusts an on-demand scan's public key (its attestations carry no transparency-log entry). */
const scanKeySpec = (spec: OnDemandScanSpec) => ({
  keys: [
    {
      secretRef: { name: spec.publicKey.secretRef.name, key: spec.publicKey.secretRef.key ?? 'cosign.pub' },
      ignoreTlog: true,
    },
  ],
});

const keyOf = (k: ObjectKey): string => `${k.namespace}/${k.name}`;

export type JsonPatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'test'; path: string; value: unknown };
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
/**
 * The report on each digest the observed containers run (one digest each; a container whose
 * pods disagree is left out), judged once per digest.
 */
function judgeRunning<R, V>(
  observed: PolicyGathered['observed'],
  find: (digest: string) => R | undefined,
  judge: (report: R) => V,
  aliases: ReadonlyMap<string, readonly string[]> = new Map(),
): Map<string, V> {
  const out = new Map<string, V>();
  for (const o of observed) {
    const digest = runningDigest(o);
    if (!digest || out.has(digest)) continue;
    // A report on the digest itself, else on what stands for it (its platform manifests, or the
    // index it is a platform manifest of).
    const report = find(digest) ?? (aliases.get(digest) ?? []).map(find).find((r) => r !== undefined);
    if (report) out.set(digest, judge(report));
  }
  return out;
}

/** The one digest a container runs (undefined while its pods run several). */
function runningDigest(o: PolicyGathered['observed'][number]): string | undefined {
  const digests = o.running?.digests ?? [];
  return digests.length === 1 ? digests[0]!.digest : undefined;
}

/**
 * When the image each container runs was built, for status (the inventory's image age): only
 * when all its pods run the one digest whose config was read.
 */
function observeBuiltAt(observed: PolicyGathered['observed'], running: ReadonlyMap<string, RunningConfig>): void {
  for (const o of observed) {
    const config = running.get(o.specImage);
    if (config?.created && config.digest === runningDigest(o)) o.builtAt = config.created.toISOString();
  }
}

/** Of what a container runs, what the image config says. */
interface RunningConfig {
  /** The digest whose config this is. */
  digest: string;
  created?: Date;
  user?: string;
}

/** The platforms whose manifests' reports stand for a multi-platform candidate's. */
const SCANNED_PLATFORMS = ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/ppc64le', 'linux/s390x'];
/** A running image whose config could not be read is not asked about again for this long. */
const CONFIG_RETRY_MS = 10 * 60_000;

export class ImagePolicyReconciler implements Reconciler {
  private readonly deps: ImagePolicyReconcilerDeps;
  private readonly configFailures = new Map<string, number>();
  /** Policies whose last pins the API server refused as forbidden, with why: Stalled until they pass. */
  private readonly pinsForbidden = new Map<string, string>();
  private readonly pins;
  private readonly gitOpsTimes;

  constructor(deps: ImagePolicyReconcilerDeps) {
    this.deps = deps;
    this.pins = deps.registry
      ? counter(deps.registry, {
          name: 'patchline_pins_total',
          help: 'Workload containers pinned to a digest, by kind of pin (rollout, rollback) and result.',
          labelNames: ['pin', 'result'] as const,
        })
      : undefined;
    this.gitOpsTimes = deps.registry
      ? {
          committed: histogram(deps.registry, {
            name: 'patchline_time_to_committed_seconds',
            help: 'GitOps mode: time from a digest being accepted to the commit that writes it being pushed.',
            labelNames: [] as const,
            buckets: exponentialBuckets(1, 2, 14),
          }),
          applied: histogram(deps.registry, {
            name: 'patchline_time_to_applied_seconds',
            help: 'GitOps mode: time from the commit being pushed to every selected container running the digest.',
            labelNames: [] as const,
            buckets: exponentialBuckets(5, 2, 14),
          }),
        }
      : undefined;
  }

  /** Time to patch in GitOps mode, at the two moments it reaches: committed, then applied everywhere. */
  private observeGitOps(before: ImagePolicy['status'], after: ImagePolicy['status'], now: Date): void {
    const git = after?.gitOps;
    const committedAt = Date.parse(git?.committedAt ?? '');
    if (!git?.commit || !Number.isFinite(committedAt)) return;
    if (before?.gitOps?.commit !== git.commit) {
      const since = Date.parse(git.desired?.since ?? '');
      if (Number.isFinite(since)) this.gitOpsTimes?.committed.observe({}, Math.max(0, committedAt - since) / 1000);
    }
    const done = (s: ImagePolicy['status']): boolean =>
      (s?.workloads?.length ?? 0) > 0 &&
      (s?.workloads ?? []).every((w) => w.state === 'UpToDate' && w.commit === git.commit);
    if (done(after) && !done(before))
      this.gitOpsTimes?.applied.observe({}, Math.max(0, now.getTime() - committedAt) / 1000);
  }

  /** Who acts for a policy: its ServiceAccount, the default one, or the operator itself. */
  private actorOf(policy: ImagePolicy): Actor | undefined {
    return actorFor(
      policy.metadata?.namespace ?? '',
      policy.spec.serviceAccountName,
      this.deps.defaultServiceAccount ?? '',
    );
  }

  private now(): Date {
    return (this.deps.now ?? (() => new Date()))();
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const k = keyOf(key);
    const policy = this.deps.get(key);
    if (!policy || policy.metadata?.deletionTimestamp) {
      this.forget(k);
      return policy ? this.finalize(key, policy, ctx) : done;
    }
    const now = this.now();
    if (policy.spec.suspend === true || specProblems(policy).length > 0) {
      this.forget(k);
      await this.write(policy, decideImagePolicy(policy, now), ctx);
      return done;
    }

    const gathered = await this.gather(k, policy, now, ctx);
    const forbidden = this.pinsForbidden.get(k);
    if (forbidden) gathered.pinsForbidden = forbidden;
    const decision = decideImagePolicy(policy, now, gathered);
    await this.write(policy, decision, ctx);
    // No pin without the finalizer that releases it when the policy is deleted.
    if (decision.pins.length > 0 && !(policy.metadata?.finalizers ?? []).includes(PinsFinalizer)) {
      const ops: JsonPatchOperation[] = policy.metadata?.finalizers
        ? [{ op: 'add', path: '/metadata/finalizers/-', value: PinsFinalizer }]
        : [{ op: 'add', path: '/metadata/finalizers', value: [PinsFinalizer] }];
      await this.deps.patch(key, ops, ctx.signal);
    }
    let retryMs = await this.applyPins(k, policy, decision.pins, ctx);
    // Forbidden pins (or their end) change Ready and Stalled: written at the next reconcile, soon.
    if (this.pinsForbidden.get(k) !== forbidden) retryMs = Math.min(retryMs ?? Infinity, 1_000);
    const next = Math.min(decision.requeueAfterMs ?? Infinity, retryMs ?? Infinity);
    return Number.isFinite(next) ? requeueAfter(next) : done;
  }

  /** The candidate (followed tag, its digest, facts for the checks) and the containers it governs. */
  private async gather(k: string, policy: ImagePolicy, now: Date, ctx: ReconcileContext): Promise<PolicyGathered> {
    const namespace = policy.metadata?.namespace ?? '';
    const source = this.deps.credentials.registrySource(namespace, policy.spec.registryAuth);
    const ref = parseReference(policy.spec.image);
    const intervalMs = parseDuration(policy.spec.interval ?? '5m');
    const follow = await this.follow(k, policy, ref, source, intervalMs, ctx);
    const gathered: PolicyGathered = { follow, observed: [], violations: [] };
    if (follow.digest) {
      try {
        gathered.facts = await this.candidateFacts(
          policy,
          ref,
          follow.digest,
          source,
          ctx.signal,
          reconcileRequested(policy),
        );
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        gathered.factsError = message(err);
      }
    }
    const workloads = this.deps.workloads(namespace);
    const selected = selectContainers(policy, workloads);
    gathered.observed = observeContainers(selected, workloads, this.deps.pods(namespace));
    const verify = policy.spec.verify ?? {};
    const running = await this.runningConfigs(gathered.observed, verify.runAsNonRoot === true, source, ctx);
    observeBuiltAt(gathered.observed, running);
    gathered.violations = violationsOf(
      policy,
      selected,
      (image) => running.get(image)?.created,
      now,
      (image) => running.get(image)?.user,
    );
    if (verify.runAsNonRoot) this.observeUsers(gathered.observed, selected, running);
    const scanned = verify.vulnerabilities || verify.secrets;
    const aliases = scanned ? await this.reportAliases(policy, gathered.observed, source, ctx) : new Map();
    if (verify.vulnerabilities) gathered.scans = this.runningScans(policy, gathered.observed, now, aliases);
    if (verify.secrets) gathered.secretScans = this.runningSecrets(policy, gathered.observed, now, aliases);
    const gitOps = this.gitOpsRecord(policy);
    if (gitOps) gathered.gitOps = gitOps;
    return gathered;
  }

  /** GitOps mode: what the policy's GitWriteBack says git holds for it. */
  private gitOpsRecord(policy: ImagePolicy): GitOpsRecord | undefined {
    const ref = policy.spec.rollout?.mode === 'GitOps' ? policy.spec.rollout.gitOps?.writeBackRef : undefined;
    if (!ref) return undefined;
    const namespace = policy.metadata?.namespace ?? '';
    const wb = this.deps.writeBack({ namespace, name: ref.name });
    if (!wb) return { writeBack: ref.name, written: { message: `GitWriteBack ${namespace}/${ref.name} not found` } };
    const entry = wb.status?.policies?.find((p) => p.name === policy.metadata?.name);
    const ready = wb.status?.conditions?.find((c) => c.type === 'Ready');
    const message = entry?.message ?? (ready?.status === 'False' ? ready.message : undefined);
    return {
      writeBack: ref.name,
      written: {
        ...(entry?.digest ? { digest: entry.digest } : {}),
        ...(entry?.commit ? { commit: entry.commit } : {}),
        ...(entry?.committedAt ? { committedAt: entry.committedAt } : {}),
        ...(message ? { message } : {}),
        ...(entry?.pullRequest ? { pullRequest: entry.pullRequest } : {}),
      },
    };
  }

  /** Pins the containers decided; a failed pin is an Event and a retry in 30 s. */
  private async applyPins(
    k: string,
    policy: ImagePolicy,
    pins: readonly PinAction[],
    ctx: ReconcileContext,
  ): Promise<number | undefined> {
    let retryMs: number | undefined;
    if (pins.length === 0) {
      this.pinsForbidden.delete(k);
      return retryMs;
    }
    const namespace = policy.metadata?.namespace ?? '';
    const actor = this.actorOf(policy);
    let forbidden: string | undefined;
    // Every apply states all of Patchline's pins on its workload (they share the field
    // manager): the cached ones, and those applied earlier in this loop.
    const pinned = new Set(pins.map((p) => `${p.kind}/${p.name}`));
    const current = new Map(
      this.deps
        .workloads(namespace)
        .filter((w) => pinned.has(`${w.kind}/${w.metadata.name}`))
        .map((w) => [`${w.kind}/${w.metadata.name}`, w]),
    );
    const appliedNow = new Map<string, KeptPin[]>();
    for (const p of pins) {
      const kind = p.rollback ? 'rollback' : 'rollout';
      const workload = `${p.kind}/${p.name}`;
      const cached = current.get(workload);
      const earlier = appliedNow.get(workload) ?? [];
      const others = [
        ...earlier.filter((o) => o.container !== p.container),
        ...(cached
          ? keptPins(
              {
                annotations: cached.metadata.annotations ?? {},
                containers: cached.spec?.template?.spec?.containers ?? [],
              },
              p.container,
            ).filter((o) => !earlier.some((e) => e.container === o.container))
          : []),
      ];
      const request: PinRequest = {
        kind: p.kind,
        namespace,
        name: p.name,
        container: p.container,
        image: p.image,
        policy: k,
        previousImage: p.previousImage,
        ...(p.reverts ? { reverts: p.reverts } : {}),
        ...(others.length > 0 ? { others } : {}),
      };
      try {
        await this.deps.pin(request, ctx.signal, actor);
        appliedNow.set(workload, [
          ...others,
          { container: p.container, image: p.image, annotation: pinAnnotationValue(request) },
        ]);
        this.pins?.inc({ pin: kind, result: 'applied' });
        ctx.log.info(p.rollback ? 'rolled back' : 'pinned', { workload, container: p.container, image: p.image });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        this.pins?.inc({ pin: kind, result: 'failed' });
        const note = `${p.kind}/${p.name}/${p.container}: cannot set the image to ${p.image}: ${message(err)}`;
        // Refused by RBAC: retrying will not help until someone grants it; the policy stalls.
        if (isForbidden(err))
          forbidden ??= `cannot pin ${p.kind}/${p.name}: forbidden: ${describeActor(actor)} cannot patch ${p.kind.toLowerCase()}s in namespace ${namespace} (${message(err)})`;
        ctx.log.warn('pin failed; will try again', { error: message(err), workload });
        this.deps.events.record(withKind(policy, 'ImagePolicy'), 'Warning', 'PinFailed', 'Rollout', note);
        retryMs = 30_000;
      }
    }
    if (forbidden) this.pinsForbidden.set(k, forbidden);
    else this.pinsForbidden.delete(k);
    return retryMs;
  }

  /**
   * A deleted policy that pinned workloads: its pins are released (annotations removed, images
   * left on their digests), then its finalizer is removed and the API server deletes it.
   */
  private async finalize(key: ObjectKey, policy: ImagePolicy, ctx: ReconcileContext): Promise<ReconcileResult> {
    const finalizers = policy.metadata?.finalizers ?? [];
    const index = finalizers.indexOf(PinsFinalizer);
    if (index < 0) return done;
    const k = keyOf(key);
    this.pinsForbidden.delete(k);
    const actor = this.actorOf(policy);
    let released = 0;
    for (const w of this.deps.workloads(key.namespace)) {
      const workload: PinnedWorkload = {
        kind: w.kind,
        namespace: key.namespace,
        name: w.metadata.name,
        annotations: w.metadata.annotations ?? {},
        containers: w.spec?.template?.spec?.containers ?? [],
      };
      if (await this.deps.release(workload, k, ctx.signal, actor)) released++;
    }
    await this.deps.patch(
      key,
      [
        { op: 'test', path: `/metadata/finalizers/${index}`, value: PinsFinalizer },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ],
      ctx.signal,
    );
    if (released > 0) {
      this.deps.events.record(
        withKind(policy, 'ImagePolicy'),
        'Normal',
        'PinsReleased',
        'Delete',
        `released the pins on ${released} workload(s); their images stay on the pinned digests`,
      );
    }
    ctx.log.info('pins released', { workloads: released });
    return done;
  }

  private forget(k: string): void {
    this.deps.watches.drop(k);
    this.deps.tagLists.drop(k);
  }

  private async write(
    policy: ImagePolicy,
    decision: ReturnType<typeof decideImagePolicy>,
    ctx: ReconcileContext,
  ): Promise<void> {
    // Status first: it holds the previous digest that a rollback of the pins below needs.
    const wrote = await this.deps.status.write(ImagePolicyType, policy, decision.status);
    if (!wrote) return;
    this.observeGitOps(policy.status, decision.status, this.now());
    const regarding = withKind(policy, 'ImagePolicy');
    for (const e of decision.events) this.deps.events.record(regarding, e.type, e.reason, e.action, e.note, e.details);
    ctx.log.info('status updated', {
      ready: decision.status.conditions?.find((c) => c.type === 'Ready')?.reason,
      upToDate: decision.status.upToDate,
    });
  }

  /** The tag to follow and its digest: the fixed tag, or the best of the tag list; HEAD only that tag. */
  private async follow(
    k: string,
    policy: ImagePolicy,
    ref: ImageReference,
    source: CredentialSource,
    intervalMs: number,
    ctx: ReconcileContext,
  ): Promise<FollowResult> {
    const result: FollowResult = {};
    let tag = policy.spec.follow.tag;
    if (tag === undefined) {
      try {
        const listing = await this.deps.tagLists.list(k, ref, source, intervalMs, ctx.signal);
        const choice = chooseTag(policy.spec.follow, listing.tags);
        if (choice.tag !== undefined) tag = choice.tag;
        else result.error = `${choice.reason} (${choice.considered} tags)`;
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        result.error = `listing the tags of ${policy.spec.image}: ${message(err)}`;
      }
    } else {
      this.deps.tagLists.drop(k);
    }
    if (tag === undefined) {
      // Keep watching the tag chosen last time while the list cannot be read.
      const last = policy.status?.latest?.tag;
      if (!last || !result.error?.startsWith('listing')) {
        this.deps.watches.drop(k);
        return result;
      }
      tag = last;
    }
    const tagRef: ImageReference = { registry: ref.registry, repository: ref.repository, tag };
    this.deps.watches.sync(k, [{ reference: tagRef, source, intervalMs }]);
    result.tag = tag;
    const state = this.deps.watches.state(k, tagRef);
    if (state?.digest) result.digest = state.digest;
    if (state?.error && !result.error) result.error = state.error;
    if (state?.budget) result.budget = state.budget;
    // A RebuildTrigger that has just confirmed a new digest on this tag: take it now, and
    // have the watcher look (it confirms, and every other follower learns it too).
    const repository = repositoryName(ref);
    for (const t of this.deps.triggers(policy.metadata?.namespace ?? '')) {
      const landed = t.status?.landed;
      if (!landed?.digest || !landed.at) continue;
      let target: ImageReference;
      try {
        target = parseReference(t.spec.target.image);
      } catch {
        continue;
      }
      if (repositoryName(target) !== repository || (target.tag ?? 'latest') !== tag) continue;
      if (state?.checkedAt === undefined || Date.parse(landed.at) > state.checkedAt) {
        if (landed.digest !== result.digest) this.deps.watches.lookNow(tagRef);
        result.digest = landed.digest;
      }
    }
    return result;
  }

  /** What the checks need of the candidate: what the registry serves for it, its created time, its declared base, its signature and scan. */
  private async candidateFacts(
    policy: ImagePolicy,
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal: AbortSignal,
    fresh: boolean,
  ): Promise<CandidateFacts> {
    const facts: CandidateFacts = { served: await this.deps.facts.servedManifest(ref, digest, source, signal, fresh) };
    const verify = policy.spec.verify ?? {};
    if (verify.maxAge) {
      const created = await this.deps.facts.created(ref, digest, source, signal);
      if (created) facts.created = created;
    }
    if (verify.runAsNonRoot) {
      facts.runAs = {
        imageUser: await this.deps.facts.user(ref, digest, source, signal),
        containers: this.runAsContainers(policy),
      };
    }
    if (verify.secrets) {
      const scan = await this.candidateSecrets(policy.metadata?.namespace ?? '', ref, digest, source, signal);
      if (scan) facts.secretScan = scan;
    }
    if (verify.provenance?.requireBase)
      facts.provenance = await this.candidateProvenance(policy, ref, digest, source, signal);
    if (verify.signature || verify.vulnerabilities) {
      const namespace = policy.metadata?.namespace ?? '';
      const authorities: Authority[] = verify.signature
        ? await this.deps.trust.authorities(namespace, verify.signature, signal)
        : [];
      if (verify.signature)
        facts.signature = await this.deps.trust.signature({ image: ref, digest, source, authorities, signal, fresh });
      if (verify.vulnerabilities) {
        const scan = await this.candidateScan(policy, ref, digest, source, authorities, signal, fresh);
        Object.assign(facts, scan);
      }
    }
    return facts;
  }

  /** The candidate's secret scan: an ExposedSecretReport on its digest, else on its platform manifests. */
  private async candidateSecrets(
    namespace: string,
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal: AbortSignal,
  ): Promise<CandidateFacts['secretScan']> {
    const find = (d: string) => this.deps.secretReports?.(d, namespace);
    let found = reportsOfImage(find, digest);
    if (!found) {
      const platforms = await this.deps.facts.platformDigests(ref, digest, SCANNED_PLATFORMS, source, signal);
      found = reportsOfImage(find, digest, Object.values(platforms));
    }
    return found
      ? { secrets: found.reports.flatMap((r) => r.secrets), source: `ExposedSecretReport ${found.names}` }
      : undefined;
  }

  /** Whether the candidate is built on the current digest of a base a RebuildTrigger of the namespace follows. */
  private async candidateProvenance(
    policy: ImagePolicy,
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal: AbortSignal,
  ): Promise<NonNullable<CandidateFacts['provenance']>> {
    const repository = repositoryName(ref);
    const builders = this.deps
      .triggers(policy.metadata?.namespace ?? '')
      .filter((t) => repositoryOf(t.spec.target.image) === repository);
    if (builders.length === 0) {
      return {
        verdict: 'Unknown',
        message: `no RebuildTrigger in this namespace rebuilds ${repository}, so the current digest of its base is not known`,
      };
    }
    const declared = await this.deps.facts.declaredBases(ref, digest, source, signal);
    return judge(declared, {
      repositories: builders.flatMap((t) => t.spec.baseImages.flatMap((b) => repositoryOf(b.image) ?? [])),
      digests: builders.flatMap((t) =>
        (t.status?.bases ?? []).flatMap((b) =>
          [b.digest, ...Object.values(b.platformDigests ?? {})].filter((d): d is string => !!d),
        ),
      ),
    });
  }

  /**
   * The candidate's scan: a VulnerabilityReport on its digest, else on its platform manifests
   * (read from the manifest already fetched for the digest check: no extra request), else a
   * vulnerability attestation signed by an authority the policy trusts.
   */
  private async candidateScan(
    policy: ImagePolicy,
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    authorities: readonly Authority[],
    signal: AbortSignal,
    fresh: boolean,
  ): Promise<Pick<CandidateFacts, 'scan' | 'scanPending' | 'scanNotes'>> {
    const namespace = policy.metadata?.namespace ?? '';
    const index = { forDigest: (d: string, ns?: string) => this.deps.reports(d, ns ?? namespace) };
    let scan = scanOfImage(index, digest, namespace);
    if (!scan) {
      const platforms = await this.deps.facts.platformDigests(ref, digest, SCANNED_PLATFORMS, source, signal);
      scan = scanOfImage(index, digest, namespace, Object.values(platforms));
    }
    if (scan) return { scan };
    const registry = await this.registryScan(policy, ref, digest, source, signal, fresh);
    if (registry.scan) return registry;
    // Attestations count only when signed by an authority the policy trusts: anyone who can
    // push to the repository could attach an unsigned "clean" report. An on-demand scan's key
    // is trusted for them too.
    const onDemand = policy.spec.verify?.vulnerabilities?.onDemandScan;
    const attestors = onDemand
      ? [...authorities, ...(await this.deps.trust.authorities(namespace, scanKeySpec(onDemand), signal))]
      : authorities;
    const attestedScan = async (again: boolean) => {
      if (attestors.length === 0) return undefined;
      const attested = await this.deps.trust.attestedScan({
        image: ref,
        digest,
        source,
        authorities: attestors,
        signal,
        fresh: again,
      });
      return attested
        ? {
            findings: attested.findings,
            source: `vulnerability attestation${attested.scanner ? ` (${attested.scanner})` : ''}`,
          }
        : undefined;
    };
    const attested = await attestedScan(fresh);
    if (attested) {
      if (onDemand) await this.removeScanJob(policy, digest, signal);
      return { scan: attested };
    }
    if (!onDemand || !this.deps.scanJobs || registry.scanPending) return registry;
    return this.onDemandScan(policy, onDemand, ref, digest, registry, () => attestedScan(true), signal);
  }

  /**
   * A candidate no source has scanned gets a scan Job (made as the ServiceAccount the policy acts
   * as): it waits while the Job runs, and is judged by the attestation the Job attached once it
   * succeeded (the Job is then deleted).
   */
  private async onDemandScan(
    policy: ImagePolicy,
    spec: OnDemandScanSpec,
    ref: ImageReference,
    digest: string,
    registry: Pick<CandidateFacts, 'scanNotes'>,
    attestedNow: () => Promise<CandidateFacts['scan']>,
    signal: AbortSignal,
  ): Promise<Pick<CandidateFacts, 'scan' | 'scanPending' | 'scanNotes'>> {
    const namespace = policy.metadata?.namespace ?? '';
    const actor = this.actorOf(policy);
    const job = await this.deps.scanJobs!.follow(policy, spec, repositoryName(ref), digest, actor, signal);
    const what = `the scan Job ${namespace}/${job.name}`;
    const notes = registry.scanNotes ?? [];
    if (job.state === 'running')
      return { scanPending: { source: what, detail: job.detail, since: this.pendingSince(policy, digest) } };
    if (job.state === 'failed') return { scanNotes: [...notes, `${what} failed: ${job.detail}`] };
    const scan = await attestedNow();
    if (!scan) {
      const key = `${spec.publicKey.secretRef.name}/${spec.publicKey.secretRef.key ?? 'cosign.pub'}`;
      return {
        scanNotes: [...notes, `${what} succeeded but no vulnerability attestation signed by key ${key} is attached`],
      };
    }
    await this.deps.scanJobs!.remove(namespace, job.name, actor, signal);
    return { scan };
  }

  /** Deletes a candidate's finished scan Job still in the cache (its attestation was read). */
  private async removeScanJob(policy: ImagePolicy, digest: string, signal: AbortSignal): Promise<void> {
    const namespace = policy.metadata?.namespace ?? '';
    const name = scanJobName(policy.metadata?.name ?? '', digest);
    if (!this.deps.scanJobs || !this.deps.jobCached?.(namespace, name)) return;
    const actor = this.actorOf(policy);
    await this.deps.scanJobs.remove(namespace, name, actor, signal);
  }

  /** Since when the candidate has waited for a scan: kept in status.latest.pendingSince while the digest is the same. */
  private pendingSince(policy: ImagePolicy, digest: string): Date {
    const latest = policy.status?.latest;
    return latest?.digest === digest && latest.pendingSince ? new Date(latest.pendingSince) : this.now();
  }

  /**
   * What the policy's registry scanners say: a finished scan, or one in progress and since when
   * the candidate waits for it (kept in status.latest.pendingSince while the digest is the same).
   */
  private async registryScan(
    policy: ImagePolicy,
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal: AbortSignal,
    fresh: boolean,
  ): Promise<Pick<CandidateFacts, 'scan' | 'scanPending' | 'scanNotes'>> {
    // The policy's scanners, else the one the config file names for the image's registry.
    const configured = this.deps.registryScanner?.(ref.registry);
    const specs = policy.spec.verify?.vulnerabilities?.scanners ?? (configured ? [configured] : []);
    if (specs.length === 0 || !this.deps.registryScans) return {};
    const namespace = policy.metadata?.namespace ?? '';
    const verdict = await this.deps.registryScans.judge({
      namespace,
      image: ref,
      digest,
      source,
      specs,
      signal,
      fresh,
    });
    if (verdict.state === 'scanned') {
      const when = verdict.scannedAt ? ` of ${verdict.scannedAt.toISOString()}` : '';
      return { scan: { findings: verdict.findings, source: `${verdict.source}${when}` } };
    }
    if (verdict.state === 'none') return verdict.notes.length > 0 ? { scanNotes: verdict.notes } : {};
    return {
      scanPending: { source: verdict.source, detail: verdict.detail, since: this.pendingSince(policy, digest) },
    };
  }

  /** The containers a policy selects, with who their pod and they say they run as. */
  private runAsContainers(policy: ImagePolicy): RunAsContainer[] {
    const workloads = this.deps.workloads(policy.metadata?.namespace ?? '');
    const byKey = new Map(workloads.map((w) => [`${w.kind}/${w.metadata.name}`, w]));
    return selectContainers(policy, workloads).map((c) => {
      const spec = byKey.get(`${c.kind}/${c.name}`)?.spec?.template?.spec;
      const own = spec?.containers?.find((x) => x.name === c.container)?.securityContext;
      return {
        container: `${c.kind}/${c.name}/${c.container}`,
        ...(spec?.securityContext ? { pod: spec.securityContext } : {}),
        ...(own ? { own } : {}),
      };
    });
  }

  /** What the secret scans of the running digests found, judged by verify.secrets. */
  private runningSecrets(
    policy: ImagePolicy,
    observed: PolicyGathered['observed'],
    now: Date,
    aliases: ReadonlyMap<string, readonly string[]>,
  ): Map<string, ContainerSecrets> {
    const spec = policy.spec.verify?.secrets;
    if (!spec) return new Map();
    const namespace = policy.metadata?.namespace ?? '';
    return judgeRunning(
      observed,
      (digest) => this.deps.secretReports?.(digest, namespace),
      (report) => {
        const gate = gateSecrets(spec, report.secrets, now);
        return {
          counts: gate.counts,
          blocking: gate.blocking.length,
          rules: gate.rules,
          report: `${report.metadata.namespace}/${report.metadata.name}`,
          message: gate.message,
        };
      },
      aliases,
    );
  }

  /** What the scans of the running digests found, judged by the policy's gate. */
  private runningScans(
    policy: ImagePolicy,
    observed: PolicyGathered['observed'],
    now: Date,
    aliases: ReadonlyMap<string, readonly string[]>,
  ): Map<string, ContainerScan> {
    const spec = policy.spec.verify?.vulnerabilities;
    if (!spec) return new Map();
    const namespace = policy.metadata?.namespace ?? '';
    return judgeRunning(
      observed,
      (digest) => this.deps.reports(digest, namespace),
      (report) => {
        const gate = gateVulnerabilities(spec, report.findings, now);
        return {
          counts: gate.counts,
          blocking: gate.blocking.length,
          report: `${report.metadata.namespace}/${report.metadata.name}`,
          message: gate.message,
          ...(report.updated ? { scannedAt: report.updated } : {}),
        };
      },
      aliases,
    );
  }

  /** verify.runAsNonRoot: who each selected container runs as, on its observed entry (status). */
  private observeUsers(
    observed: PolicyGathered['observed'],
    selected: readonly SelectedContainer[],
    running: ReadonlyMap<string, RunningConfig>,
  ): void {
    const byKey = new Map(selected.map((c) => [`${c.kind}/${c.name}/${c.container}`, c]));
    for (const o of observed) {
      const c = byKey.get(`${o.kind}/${o.name}/${o.container}`);
      const user = c ? containerUser(c, running.get(o.specImage)?.user) : undefined;
      if (user) o.user = describeUser(user);
    }
  }

  /**
   * For the running digests no report names, the digests whose reports stand for them: the
   * platform manifests of an index, or the index (the candidate's, or another running digest)
   * a platform manifest belongs to. Trivy Operator and registry scanners name either, so both
   * ways are matched through the index's manifests (read once per digest, cached).
   */
  private async reportAliases(
    policy: ImagePolicy,
    observed: PolicyGathered['observed'],
    source: CredentialSource,
    ctx: ReconcileContext,
  ): Promise<Map<string, string[]>> {
    const namespace = policy.metadata?.namespace ?? '';
    const reported = (d: string) =>
      this.deps.reports(d, namespace) !== undefined || this.deps.secretReports?.(d, namespace) !== undefined;
    const running = [...new Set(observed.map(runningDigest).filter((d): d is string => d !== undefined))];
    const unreported = running.filter((d) => !reported(d));
    if (unreported.length === 0) {
      this.deps.reportAliases?.set(`${namespace}/${policy.metadata?.name ?? ''}`, []);
      return new Map();
    }
    let ref: ImageReference;
    try {
      ref = parseReference(policy.spec.image);
    } catch {
      return new Map();
    }
    const known = new Set([...running, ...(policy.status?.latest?.digest ? [policy.status.latest.digest] : [])]);
    const platformsOf = new Map<string, string[]>();
    await Promise.all(
      [...known].map(async (d) => {
        try {
          const platforms = await this.deps.facts.platformDigests(ref, d, SCANNED_PLATFORMS, source, ctx.signal);
          platformsOf.set(
            d,
            [...new Set(Object.values(platforms))].filter((p) => p !== d),
          );
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          ctx.log.debug('cannot read the manifests of a running image', { digest: d, error: message(err) });
        }
      }),
    );
    const aliases = new Map<string, string[]>();
    for (const d of unreported) {
      const indexes = [...platformsOf].filter(([index, platforms]) => index !== d && platforms.includes(d));
      const stand = [...(platformsOf.get(d) ?? []), ...indexes.map(([index]) => index)];
      if (stand.length > 0) aliases.set(d, stand);
    }
    this.deps.reportAliases?.set(`${namespace}/${policy.metadata?.name ?? ''}`, [
      ...new Set([...aliases.values()].flat()),
    ]);
    return aliases;
  }

  /**
   * Of the image config of what each observed container runs: its created time (the
   * maximum-age report, and when the running image was built in status) and, with `users`,
   * its User (runAsNonRoot), by the container's spec image. Configs are cached by digest, so
   * this costs one registry read per running digest; images whose config cannot be read are
   * skipped for a while.
   */
  private async runningConfigs(
    observed: PolicyGathered['observed'],
    users: boolean,
    source: CredentialSource,
    ctx: ReconcileContext,
  ): Promise<Map<string, RunningConfig>> {
    const out = new Map<string, RunningConfig>();
    const now = this.now().getTime();
    await Promise.all(
      observed.map(async (o) => {
        const digests = o.running?.digests ?? [];
        const digest = digests.length === 1 ? digests[0]!.digest : digestOfImageID(o.specImage);
        if (!digest) return;
        let ref: ImageReference;
        try {
          ref = parseReference(o.specImage);
        } catch {
          return;
        }
        const id = `${repositoryName(ref)}@${digest}`;
        if (now - (this.configFailures.get(id) ?? -Infinity) < CONFIG_RETRY_MS) return;
        try {
          const [created, user] = await Promise.all([
            this.deps.facts.created(ref, digest, source, ctx.signal),
            users ? this.deps.facts.user(ref, digest, source, ctx.signal) : undefined,
          ]);
          out.set(o.specImage, { digest, ...(created ? { created } : {}), ...(user !== undefined ? { user } : {}) });
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          this.configFailures.set(id, now);
          if (this.configFailures.size > 10_000) this.configFailures.clear();
          ctx.log.debug('cannot read the config of a running image', { image: id, error: message(err) });
        }
      }),
    );
    return out;
  }
}
