// Patchline operator entry point: wiring only. run() is the composition root: it builds the
// parts in dependency order (each from the parts above it), so that nothing is called before
// it exists — the controllers' work queues come first, because the caches' event handlers,
// the tag lists, the watches and the build slots all wake keys on them.
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, usage, type Config } from './config.ts';
import {
  EVENT_CONTROLLER,
  GitWriteBackType,
  ImagePolicyType,
  RebuildTriggerType,
  type GitWriteBack,
  type ImagePolicy,
  type RebuildTrigger,
} from './api/v1alpha1/index.ts';
import { GitWriteBackReconciler } from './controllers/gitwriteback/reconciler.ts';
import { ImagePolicyReconciler } from './controllers/imagepolicy/reconciler.ts';
import { RebuildTriggerReconciler, defaultProviders } from './controllers/rebuildtrigger/reconciler.ts';
import {
  BUILD_OBJECTS_SELECTOR,
  JobType,
  PipelineRunType,
  slimBuildObject,
  triggerKeyOf,
  policyKeyOf,
  type BuildObject,
} from './controllers/rebuildtrigger/build-objects.ts';
import { BuildSlots } from './controllers/rebuildtrigger/slots.ts';
import { CredentialResolver } from './controllers/credentials.ts';
import { RegistryFacts } from './controllers/registry-facts.ts';
import { ResourceWatches } from './controllers/watches.ts';
import { Controller } from './runtime/controller.ts';
import { Notifier } from './notify/notifier.ts';
import { sleep } from './runtime/clock.ts';
import { NoticeRecorder } from './notify/recorder.ts';
import { AuditedEventRecorder, KubeEventRecorder } from './runtime/events.ts';
import { informerSet, type InformerSet } from './runtime/informer-set.ts';
import { createKubeClient, loadKubeConfig, type KubeClient } from './runtime/kube-client.ts';
import { objectPath, withoutBookkeeping, type KubeObject, type ResourceType } from './runtime/kube-types.ts';
import { KubeLeaseStore, LeaderElector } from './runtime/leaderelection.ts';
import { createLogger, type Logger } from './runtime/logger.ts';
import { Manager } from './runtime/manager.ts';
import { createRegistry, type Registry } from './runtime/metrics.ts';
import { ProbeServer } from './runtime/server.ts';
import { KubeStatusWriter, type StatusWriter } from './runtime/status.ts';
import { WorkQueue } from './runtime/workqueue.ts';
import { EMPTY_FILE_CONFIG, loadConfigFile, type FileConfig } from './config-file.ts';
import { RegistryClient } from './registry/client.ts';
import { DigestWatcher } from './registry/watcher.ts';
import { WebhookServer } from './registry/webhooks/server.ts';
import { BuildCallbacks } from './controllers/rebuildtrigger/callbacks.ts';
import { WebhookInbox } from './registry/webhooks/inbox.ts';
import { actingAs } from './runtime/impersonation.ts';
import { fencedClient } from './runtime/fence.ts';
import { TagLists } from './controllers/tag-lists.ts';
import { selectsWorkload } from './controllers/imagepolicy/select.ts';
import { applyPin, releasePins } from './rollout/pin.ts';
import { ScanJobs } from './controllers/scan-jobs.ts';
import { ReportAliasWatch } from './controllers/report-aliases.ts';
import { RegistryScans } from './controllers/registry-scans.ts';
import { ImageTrust } from './controllers/image-trust.ts';
import {
  ReportIndex,
  VulnerabilityReportType,
  FindingsPool,
  slimReportSharing,
  type IndexedReport,
  type SlimReport,
} from './controllers/vulnerability-reports.ts';
import {
  ExposedSecretReportType,
  SecretReportIndex,
  slimSecretReport,
  type SlimSecretReport,
} from './controllers/secret-reports.ts';
import type { EventRecorder } from './runtime/events.ts';
import { TrustedRootSource } from './verify/trusted-root.ts';
import { AdmissionRuntime } from './admission/runtime.ts';
import { AdmissionReviewer } from './admission/server.ts';
import { AdmissionTls } from './admission/tls.ts';
import { serviceHosts } from './admission/certificates.ts';
import { podChanged, slimWorkload, type Pod, type Workload, type WorkloadKind } from './rollout/workloads.ts';
import { GovernedPods } from './controllers/governed-pods.ts';

const SHUTDOWN_DEADLINE_MS = 25_000;

const WORKLOAD_TYPES: { type: ResourceType; kind: WorkloadKind }[] = [
  {
    type: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true },
    kind: 'Deployment',
  },
  {
    type: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet', namespaced: true },
    kind: 'StatefulSet',
  },
  {
    type: { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet', namespaced: true },
    kind: 'DaemonSet',
  },
];
const PodType: ResourceType = { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true };

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** What every part is built from: configuration, the cluster, the logger, the metrics. */
interface Basics {
  config: Config;
  fileConfig: FileConfig;
  log: Logger;
  registry: Registry;
  client: KubeClient;
  /** What the controllers write with: fenced by the leader lease when leader election is on. */
  writer: KubeClient;
}

/** The controllers' work queues, made first: the parts below wake keys on them. */
interface Queues {
  policies: WorkQueue;
  triggers: WorkQueue;
  writeBacks: WorkQueue;
}

const wake =
  (queue: WorkQueue) =>
  (key: string): void =>
    queue.add(key);

function leaderElector(b: Basics): LeaderElector | undefined {
  const le = b.config.leaderElection;
  if (!le.enabled) return undefined;
  return new LeaderElector({
    store: new KubeLeaseStore(b.client, b.config.namespace, le.leaseName),
    identity: b.config.identity,
    leaseDurationMs: le.leaseDurationMs,
    renewDeadlineMs: le.renewDeadlineMs,
    retryPeriodMs: le.retryPeriodMs,
    logger: b.log,
    registry: b.registry,
  });
}

/** Registries: one client, one digest watcher (checking on the leader only) and shared facts. */
function registryParts(b: Basics, manager: Manager, queues: Queues) {
  const client = new RegistryClient({
    hosts: b.fileConfig.registries,
    userAgent: `patchline/${version()}`,
    registry: b.registry,
  });
  const watcher = new DigestWatcher({ client, logger: b.log, registry: b.registry });
  manager.addLeaderTask((signal) => {
    watcher.start();
    signal.addEventListener('abort', () => watcher.stop(), { once: true });
  });
  const tagLists = new TagLists(client, (keys) => keys.forEach(wake(queues.policies)));
  return { client, watcher, facts: new RegistryFacts(client), tagLists };
}

/** Keeps `index` current with the set's reports; the set's informers run on every replica. */
function indexed<R extends KubeObject & IndexedReport>(
  reports: InformerSet<R>,
  index: ReportIndex<R>,
  manager: Manager,
): InformerSet<R> {
  for (const i of reports.informers) {
    manager.addInformer(i);
    i.addHandlers({
      onAdd: (r) => index.set(r),
      onUpdate: (old, r) => index.set(r, old),
      onDelete: (r) => index.delete(r),
    });
  }
  return reports;
}

/** The caches: the two kinds, and what ImagePolicies govern and read, cached slim. */
function caches(b: Basics, manager: Manager) {
  const set = <T extends KubeObject>(
    type: ResourceType,
    transform?: (o: KubeObject) => T,
    optional = false,
    labelSelector = '',
  ) =>
    informerSet<T>(type, {
      namespaces: b.config.watchNamespaces,
      client: b.client,
      logger: b.log,
      registry: b.registry,
      ...(transform ? { transform } : {}),
      optional,
      labelSelector,
    });
  // Patchline's own kinds: only this instance's shard of them. What they govern and read is
  // not sharded by label; it is cached for the policies of the shard (GovernedPods).
  const shard = b.config.watchLabelSelector;
  const policies = set<ImagePolicy>(ImagePolicyType, withoutBookkeeping, false, shard);
  const workloads = WORKLOAD_TYPES.map(({ type, kind }) => set<Workload>(type, slimWorkload(kind)));
  // Pods only of the workloads policies govern (GovernedPods), listed once the policies and
  // workloads are cached.
  const governedPods = new GovernedPods({ policies, workloads, client: b.client, logger: b.log, registry: b.registry });
  const pods = informerSet<Pod>(PodType, {
    namespaces: b.config.watchNamespaces,
    client: b.client,
    logger: b.log,
    registry: b.registry,
    transform: governedPods.shape,
    waitBeforeList: () =>
      Promise.all([...policies.informers, ...workloads.flatMap((s) => s.informers)].map((i) => i.waitForSync())),
  });
  governedPods.attach(pods);
  // Trivy Operator's reports (optional CRDs), indexed by digest; the secrets without their text.
  const reportIndex = new ReportIndex();
  const reports = indexed(
    set<SlimReport>(VulnerabilityReportType, slimReportSharing(new FindingsPool()), true),
    reportIndex,
    manager,
  );
  const secretReportIndex = new SecretReportIndex();
  const secretReports = indexed(
    set<SlimSecretReport>(ExposedSecretReportType, slimSecretReport, true),
    secretReportIndex,
    manager,
  );
  for (const s of workloads) for (const i of s.informers) manager.addInformer(i);
  for (const i of pods.informers) manager.addInformer(i);
  // The Jobs and PipelineRuns Patchline made for builds (the CRD may be absent): their changes
  // wake the owning trigger.
  const buildObjects = [JobType, PipelineRunType].map((type) =>
    informerSet<BuildObject>(type, {
      namespaces: b.config.watchNamespaces,
      client: b.client,
      logger: b.log,
      registry: b.registry,
      transform: slimBuildObject,
      labelSelector: BUILD_OBJECTS_SELECTOR,
      optional: type === PipelineRunType,
    }),
  );
  for (const i of buildObjects.flatMap((s) => s.informers)) manager.addInformer(i);
  return {
    policies,
    buildObjects,
    reportAliases: new ReportAliasWatch(),
    triggers: set<RebuildTrigger>(RebuildTriggerType, withoutBookkeeping, false, shard),
    writeBacks: set<GitWriteBack>(GitWriteBackType, withoutBookkeeping, false, shard),
    workloads,
    pods,
    reports,
    reportIndex,
    secretReports,
    secretReportIndex,
  };
}
type Caches = ReturnType<typeof caches>;

/** Which policies look again when what they govern or read changes. */
function wakePoliciesOnChanges(c: Caches, queues: Queues): void {
  const wakePolicy = wake(queues.policies);
  const keyOf = (p: ImagePolicy): string => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
  // A workload, or one of its pods, changed: the policies that govern it look again (the
  // queue folds repeats). Only those: a namespace may hold many policies and many pods.
  const wakeGoverning = (namespace: string, workloads: readonly Workload[]): void => {
    for (const p of c.policies.inNamespace(namespace))
      if (workloads.some((w) => selectsWorkload(p, w))) wakePolicy(keyOf(p));
  };
  for (const set of c.workloads) set.onChange((w, old) => wakeGoverning(w.metadata.namespace, old ? [w, old] : [w]));
  c.pods.onChange((pod) => {
    const [kind, name] = (pod.owner ?? '').split('/');
    const set: InformerSet<Workload> | undefined = c.workloads[WORKLOAD_TYPES.findIndex((t) => t.kind === kind)];
    const owner = set?.get({ namespace: pod.metadata.namespace, name: name ?? '' });
    if (owner) wakeGoverning(pod.metadata.namespace, [owner]);
  }, podChanged);
  // A RebuildTrigger confirmed a new digest: policies following its image pick it up at once.
  // Its bases' digests changed: the provenance verdicts of those policies (requireBase) are
  // judged against them, so they look again too.
  const baseDigests = (t: RebuildTrigger): string =>
    (t.status?.bases ?? []).map((b) => `${b.digest ?? ''}|${JSON.stringify(b.platformDigests ?? {})}`).join(',');
  c.triggers.onChange(
    (t) => {
      for (const p of c.policies.inNamespace(t.metadata?.namespace ?? '')) wakePolicy(keyOf(p));
    },
    (a, b) => a.status?.landed?.digest !== b.status?.landed?.digest || baseDigests(a) !== baseDigests(b),
  );
  // A new scan of what a policy runs or is about to run makes it look again: continuous
  // scanning without any rollout.
  const wakeOnReport =
    (gated: (p: ImagePolicy) => boolean) =>
    (r: { digest?: string }, old?: { digest?: string }): void => {
      const digests = new Set([r.digest, old?.digest].filter((d): d is string => !!d));
      if (digests.size === 0) return;
      for (const p of c.policies.list()) {
        if (!gated(p)) continue;
        const st = p.status;
        if (
          (st?.latest?.digest && digests.has(st.latest.digest)) ||
          st?.workloads?.some((w) => w.runningDigest && digests.has(w.runningDigest))
        )
          wakePolicy(keyOf(p));
      }
      // A report on a platform manifest of an index a policy runs, or on the index of one.
      for (const d of digests) for (const key of c.reportAliases.policiesFor(d)) wakePolicy(key);
    };
  c.secretReports.onChange(
    wakeOnReport((p) => !!p.spec.verify?.secrets),
    (a, b) => a.digest !== b.digest || a.updated !== b.updated || a.secrets.length !== b.secrets.length,
  );
  c.reports.onChange(
    wakeOnReport((p) => !!p.spec.verify?.vulnerabilities),
    (a, b) => a.digest !== b.digest || a.updated !== b.updated || a.findings.length !== b.findings.length,
  );
}

/** The GitWriteBack a GitOps policy names, as a queue key. */
function writeBackKey(p: ImagePolicy): string | undefined {
  const ref = p.spec.rollout?.mode === 'GitOps' ? p.spec.rollout.gitOps?.writeBackRef.name : undefined;
  return ref ? `${p.metadata?.namespace ?? ''}/${ref}` : undefined;
}

/**
 * GitOps mode: a policy that decides a new value for git wakes its GitWriteBack; a GitWriteBack
 * that pushed (or failed) wakes the policies that name it, which then follow the rollout.
 */
/** A build's Job or PipelineRun changed (it started, it ended): its trigger looks now, not at its next poll. */
function wakeTriggersOnBuildObjects(c: Caches, queues: Queues): void {
  const wakeTrigger = wake(queues.triggers);
  const wakePolicy = wake(queues.policies);
  for (const set of c.buildObjects)
    set.onChange((o) => {
      const key = triggerKeyOf(o);
      if (key) wakeTrigger(key);
      // A scan Job's end wakes the policy waiting for it.
      const policy = policyKeyOf(o);
      if (policy) wakePolicy(policy);
    });
}

function wakeGitOpsOnChanges(c: Caches, queues: Queues): void {
  const wakeWriteBack = wake(queues.writeBacks);
  const wakePolicy = wake(queues.policies);
  c.policies.onChange(
    (p, old) => {
      for (const key of new Set([writeBackKey(p), old ? writeBackKey(old) : undefined])) if (key) wakeWriteBack(key);
    },
    (a, b) =>
      writeBackKey(a) !== writeBackKey(b) ||
      JSON.stringify(a.status?.gitOps?.desired ?? null) !== JSON.stringify(b.status?.gitOps?.desired ?? null),
  );
  c.writeBacks.onChange(
    (wb) => {
      const ns = wb.metadata?.namespace ?? '';
      for (const p of c.policies.inNamespace(ns))
        if (writeBackKey(p) === `${ns}/${wb.metadata?.name ?? ''}`) wakePolicy(`${ns}/${p.metadata?.name ?? ''}`);
    },
    (a, b) => JSON.stringify(a.status ?? null) !== JSON.stringify(b.status ?? null),
  );
}

/**
 * Status writes, credentials and Events: every decision recorded as an Event is also an audit
 * log line (what, why, which resource), and the ones a GitWriteBack's spec.notify asks for are
 * sent on as notices.
 */
function sharedParts(
  b: Basics,
  c: Caches,
): { shared: Shared; kubeEvents: KubeEventRecorder; admissionEvents: KubeEventRecorder; notifier: Notifier } {
  const kubeEvents = new KubeEventRecorder({
    client: b.writer,
    controller: EVENT_CONTROLLER,
    instance: b.config.identity,
    logger: b.log,
    registry: b.registry,
  });
  // Admission answers on every replica, leader or not: its Events are not the leader's
  // writes, so they go through the unfenced client.
  const admissionEvents = new KubeEventRecorder({
    client: b.client,
    controller: EVENT_CONTROLLER,
    instance: b.config.identity,
    logger: b.log,
    registry: b.registry,
  });
  const credentials = new CredentialResolver(b.client);
  const notifier = new Notifier({
    secrets: (ns, name, signal) => credentials.secretData(ns, name, 'notify', signal),
    log: b.log.child({ component: 'notify' }),
    registry: b.registry,
  });
  const audited = new AuditedEventRecorder(kubeEvents, b.log.child({ component: 'audit' }));
  const events = new NoticeRecorder(audited, { writeBack: c.writeBacks.get, policy: c.policies.get, notifier });
  return {
    shared: { status: new KubeStatusWriter(b.writer, b.registry), events, credentials },
    kubeEvents,
    admissionEvents,
    notifier,
  };
}

/** What both reconcilers share: status writes, Events (each also an audit line), credentials. */
interface Shared {
  status: StatusWriter;
  events: EventRecorder;
  credentials: CredentialResolver;
}

function imagePolicyController(
  b: Basics,
  queue: WorkQueue,
  c: Caches,
  shared: Shared,
  registries: ReturnType<typeof registryParts>,
  trust: ImageTrust,
): Controller {
  return new Controller({
    name: 'imagepolicy',
    queue,
    reconciler: new ImagePolicyReconciler({
      ...shared,
      get: c.policies.get,
      workloads: (ns) => c.workloads.flatMap((set) => set.inNamespace(ns)),
      pods: c.pods.inNamespace,
      triggers: c.triggers.inNamespace,
      watches: new ResourceWatches(registries.watcher, wake(queue)),
      tagLists: registries.tagLists,
      facts: registries.facts,
      // Pins are made as the ServiceAccount the policy (or the operator's default) names.
      pin: (request, signal, actor) => applyPin(actingAs(b.writer, actor), request, signal),
      release: (workload, policy, signal, actor) => releasePins(actingAs(b.writer, actor), workload, policy, signal),
      defaultServiceAccount: b.config.defaultServiceAccount,
      patch: async (key, operations, signal) => {
        await b.writer.requestJson('PATCH', objectPath(ImagePolicyType, key), {
          body: operations,
          contentType: 'application/json-patch+json',
          signal,
        });
      },
      trust,
      registryScans: new RegistryScans({
        secrets: (ns, name, signal) => shared.credentials.secretData(ns, name, 'scanner credentials', signal),
      }),
      registryScanner: (host) => b.fileConfig.scanners?.[host],
      scanJobs: new ScanJobs(b.writer),
      reportAliases: c.reportAliases,
      jobCached: (namespace, name) => c.buildObjects[0]?.get({ namespace, name }) !== undefined,
      reports: (digest, ns) => c.reportIndex.forDigest(digest, ns),
      secretReports: (digest, ns) => c.secretReportIndex.forDigest(digest, ns),
      writeBack: c.writeBacks.get,
      registry: b.registry,
    }),
    workers: b.config.workers,
    logger: b.log,
    registry: b.registry,
  });
}

function rebuildTriggerController(
  b: Basics,
  queue: WorkQueue,
  c: Caches,
  shared: Shared,
  registries: ReturnType<typeof registryParts>,
): Controller {
  return new Controller({
    name: 'rebuildtrigger',
    queue,
    reconciler: new RebuildTriggerReconciler({
      ...shared,
      get: c.triggers.get,
      list: c.triggers.list,
      watches: new ResourceWatches(registries.watcher, wake(queue)),
      facts: registries.facts,
      slots: new BuildSlots(b.config.maxBuilds, wake(queue), b.registry),
      providers: defaultProviders(b.writer, b.fileConfig.webhooks.buildCallbackURL, b.config.defaultServiceAccount),
      registry: b.registry,
    }),
    workers: b.config.workers,
    logger: b.log,
    registry: b.registry,
  });
}

function gitWriteBackController(b: Basics, queue: WorkQueue, c: Caches, shared: Shared): Controller {
  return new Controller({
    name: 'gitwriteback',
    queue,
    reconciler: new GitWriteBackReconciler({
      ...shared,
      get: c.writeBacks.get,
      policies: c.policies.inNamespace,
      triggers: c.triggers.inNamespace,
      workDir: b.config.gitWorkDir,
      registry: b.registry,
    }),
    // One repository is written by one run at a time anyway; a few workers serve many repositories.
    workers: Math.min(b.config.workers, 4),
    logger: b.log,
    registry: b.registry,
  });
}

/** The registry webhook receiver (and build callbacks), on every replica; undefined when none is configured. */
async function startWebhooks(
  b: Basics,
  manager: Manager,
  queues: Queues,
  c: Caches,
  shared: Shared,
  registries: ReturnType<typeof registryParts>,
): Promise<WebhookServer | undefined> {
  const w = b.fileConfig.webhooks;
  if (w.receivers.length === 0 && !w.buildCallbacks) return undefined;
  const callbacks = w.buildCallbacks
    ? new BuildCallbacks({
        ...shared,
        list: c.triggers.list,
        enqueue: wake(queues.triggers),
        logger: b.log.child({ component: 'build-callbacks' }),
      })
    : undefined;
  // With leader election, followers pass deliveries on to the leader through the inbox.
  const inbox = b.config.leaderElection.enabled
    ? new WebhookInbox({
        client: b.client,
        namespace: b.config.namespace,
        name: `${b.config.leaderElection.leaseName}-webhook-inbox`,
        logger: b.log.child({ component: 'webhook-inbox' }),
        registry: b.registry,
      })
    : undefined;
  const webhooks = new WebhookServer({
    host: b.config.webhook.host,
    port: b.config.webhook.port,
    receivers: w.receivers,
    // A push makes the watcher look at the pushed tag, and the tag lists of policies that
    // follow a range or pattern in that repository stale (a new tag may qualify).
    sink: { checkNow: (notice) => registries.watcher.checkNow(notice) + registries.tagLists.pushed(notice) },
    ...(callbacks ? { callbacks } : {}),
    ...(inbox ? { inbox } : {}),
    logger: b.log,
    registry: b.registry,
    isLeader: () => manager.isLeader(),
    ...(w.maxBodyBytes ? { maxBodyBytes: w.maxBodyBytes } : {}),
    ...(w.requestsPerSecond ? { requestsPerSecond: w.requestsPerSecond } : {}),
    ...(w.burst ? { burst: w.burst } : {}),
    ...(w.tls ? { tls: w.tls } : {}),
  });
  if (inbox) {
    manager.addLeaderTask((signal) =>
      inbox.serve(signal, {
        notices: (receiver, notices) => void webhooks.deliver(receiver, notices),
        callback: (buildId, body, signature) =>
          callbacks
            ? callbacks.receive(buildId, body, signature)
            : Promise.resolve({ status: 404, message: 'build callbacks are not enabled' }),
      }),
    );
  }
  const at = await webhooks.start();
  b.log.info('receiving registry webhooks', {
    address: `${at.address}:${at.port}`,
    receivers: w.receivers.map((r) => `${r.name} (${r.format})`),
    buildCallbacks: Boolean(w.buildCallbacks),
    tls: Boolean(w.tls),
  });
  return webhooks;
}

/**
 * The policies admission judges by: every policy of the namespace, whatever its shard — a
 * pod is admitted by the policies of its namespace, not by those one shard owns. An instance
 * that owns a shard and serves admission caches all policies a second time (slim, for
 * reading only); an unsharded instance shares the controller's cache.
 */
function admissionPolicies(b: Basics, manager: Manager, c: Caches): InformerSet<ImagePolicy> {
  if (!b.config.watchLabelSelector) return c.policies;
  const all = informerSet<ImagePolicy>(ImagePolicyType, {
    namespaces: b.config.watchNamespaces,
    client: b.client,
    logger: b.log,
    registry: b.registry,
    transform: withoutBookkeeping,
  });
  for (const i of all.informers) manager.addInformer(i);
  return all;
}

/** The validating admission webhook, on every replica; undefined when disabled. */
function startAdmission(
  b: Basics,
  manager: Manager,
  c: Caches,
  shared: Shared,
  trust: ImageTrust,
  events: KubeEventRecorder,
): AdmissionRuntime | undefined {
  const a = b.config.admission;
  if (!a.address) return undefined;
  const log = b.log.child({ component: 'admission' });
  const policies = admissionPolicies(b, manager, c);
  const admission = new AdmissionRuntime({
    host: a.address.host,
    port: a.address.port,
    // Read once: a CA for client certificates changes with the API server's configuration.
    ...(a.clientCAFile ? { clientCA: readFileSync(a.clientCAFile, 'utf8') } : {}),
    reviewer: new AdmissionReviewer({
      policies: (ns) => policies.inNamespace(ns).filter((p) => p.spec.suspend !== true),
      // The owner of a Pod or ReplicaSet, for the labels that select it (a sharded instance
      // caches only its own policies' workloads: a policy selecting by name still applies).
      workload: (ns, kind, name) =>
        c.workloads.flatMap((set) => set.inNamespace(ns)).find((w) => w.kind === kind && w.metadata.name === name),
      trust,
      registrySource: (p) => shared.credentials.registrySource(p.metadata?.namespace ?? '', p.spec.registryAuth),
      events: new AuditedEventRecorder(events, b.log.child({ component: 'audit' })),
      log,
      deadlineMs: a.deadlineMs,
      registry: b.registry,
    }),
    certificates: a.certDir
      ? { kind: 'files', dir: a.certDir }
      : {
          kind: 'managed',
          tls: new AdmissionTls({
            client: b.writer,
            namespace: b.config.namespace,
            secretName: a.secret,
            webhookConfigurationName: a.webhookConfiguration,
            hosts: serviceHosts(a.service, b.config.namespace, a.certHosts),
            log,
          }),
        },
    ready: () => policies.informers.every((i) => i.hasSynced()),
    log,
  });
  manager.addLeaderTask((signal) => void admission.lead(signal));
  admission.start();
  return admission;
}

/** Aborts on SIGTERM or SIGINT; a second signal, or a shutdown past its deadline, exits at once. */
function stopOnSignals(log: Logger): AbortSignal {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.error('second signal: exiting at once', { signal });
      process.exit(1);
    }
    log.info('shutting down', { signal });
    stop.abort();
    setTimeout(() => {
      log.error('shutdown took too long; exiting', { deadlineMs: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return stop.signal;
}

async function run(config: Config, fileConfig: FileConfig, log: Logger): Promise<number> {
  const registry = createRegistry(true);
  const kc = loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context });
  // The replica's identity in the User-Agent tells replicas apart in the API server's audit log.
  const client = await createKubeClient(kc, { registry, userAgent: `patchline/${version()} (${config.identity})` });
  const b: Basics = { config, fileConfig, log, registry, client, writer: client };
  log.info('starting patchline', {
    version: version(),
    identity: config.identity,
    server: client.server,
    watchNamespaces: config.watchNamespaces.length > 0 ? config.watchNamespaces : 'all',
    shard: config.watchLabelSelector || 'all',
    leaderElection: config.leaderElection.enabled,
  });

  const probes = new ProbeServer({ host: config.probe.host, port: config.probe.port, registry, logger: log });
  const address = await probes.start();
  log.info('serving /healthz, /readyz and /metrics', { address: `${address.address}:${address.port}` });
  const elector = leaderElector(b);
  if (elector) b.writer = fencedClient(client, () => elector.holdsLease(), { logger: log, registry });
  const manager = new Manager({ logger: log, probes, ...(elector ? { elector } : {}) });

  const queues: Queues = {
    policies: new WorkQueue({ name: 'imagepolicy', registry }),
    triggers: new WorkQueue({ name: 'rebuildtrigger', registry }),
    writeBacks: new WorkQueue({ name: 'gitwriteback', registry }),
  };
  const c = caches(b, manager);
  const { shared, kubeEvents, admissionEvents, notifier } = sharedParts(b, c);
  const registries = registryParts(b, manager, queues);
  wakePoliciesOnChanges(c, queues);
  wakeGitOpsOnChanges(c, queues);
  wakeTriggersOnBuildObjects(c, queues);
  const trust = new ImageTrust({
    client: registries.client,
    secrets: (ns, name, signal) => shared.credentials.secretData(ns, name, 'signature key', signal),
    configMaps: (ns, name, signal) => shared.credentials.configMapData(ns, name, 'trust store', signal),
    trustedRoot: new TrustedRootSource(fileConfig.sigstore),
    registry,
  });
  manager.addController(imagePolicyController(b, queues.policies, c, shared, registries, trust), c.policies.informers);
  manager.addController(rebuildTriggerController(b, queues.triggers, c, shared, registries), c.triggers.informers);
  manager.addController(gitWriteBackController(b, queues.writeBacks, c, shared), c.writeBacks.informers);
  const webhooks = await startWebhooks(b, manager, queues, c, shared, registries);
  const admission = startAdmission(b, manager, c, shared, trust, admissionEvents);

  const outcome = await manager.run(stopOnSignals(log));
  registries.watcher.stop();
  await webhooks?.stop();
  await admission?.stop();
  await Promise.all([kubeEvents.flush(), admissionEvents.flush()]);
  // Notices still queued get a few seconds, not a hung shutdown.
  await Promise.race([notifier.idle(), sleep(5_000)]);
  await probes.stop();
  await registries.client.close();
  await client.close();
  if (outcome === 'lost') {
    log.error('leadership lost; exiting so that the replica restarts clean');
    return 1;
  }
  log.info('stopped');
  return 0;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`patchline ${version()}: flags and the environment variables that set them\n${usage()}\n`);
    return;
  }
  let config: Config;
  let fileConfig: FileConfig;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
    fileConfig = config.configFile ? loadConfigFile(config.configFile) : EMPTY_FILE_CONFIG;
    // The flag (set per instance by the install) over the file (shared by shards).
    if (config.buildCallbackURL)
      fileConfig = {
        ...fileConfig,
        webhooks: { ...fileConfig.webhooks, buildCallbacks: true, buildCallbackURL: config.buildCallbackURL },
      };
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const log = createLogger(config.log);
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled promise rejection', { error: reason instanceof Error ? reason.message : String(reason) });
    process.exit(1);
  });
  try {
    process.exitCode = await run(config, fileConfig, log);
  } catch (err) {
    log.error('fatal', { error: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
  }
}

await main();
