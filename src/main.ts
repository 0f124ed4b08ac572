// Patchline operator entry point: wiring only. Configuration, logger, client, informers,
// controllers, leader election, probes, and signal handling.
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, usage, type Config } from './config.ts';
import {
  EVENT_CONTROLLER,
  ImagePolicyType,
  RebuildTriggerType,
  type ImagePolicy,
  type RebuildTrigger,
} from './api/v1alpha1/index.ts';
import { ImagePolicyReconciler } from './controllers/imagepolicy/reconciler.ts';
import { RebuildTriggerReconciler, defaultProviders } from './controllers/rebuildtrigger/reconciler.ts';
import { BuildSlots } from './controllers/rebuildtrigger/slots.ts';
import { CredentialResolver } from './controllers/credentials.ts';
import { RegistryFacts } from './controllers/registry-facts.ts';
import { ResourceWatches } from './controllers/watches.ts';
import { Controller } from './runtime/controller.ts';
import { AuditedEventRecorder, KubeEventRecorder } from './runtime/events.ts';
import { Informer } from './runtime/informer.ts';
import { createKubeClient, loadKubeConfig, type KubeClient } from './runtime/kube-client.ts';
import { collectionPath, type KubeObject, type ObjectKey, type ResourceType } from './runtime/kube-types.ts';
import { KubeLeaseStore, LeaderElector } from './runtime/leaderelection.ts';
import { createLogger, type Logger } from './runtime/logger.ts';
import { Manager } from './runtime/manager.ts';
import { createRegistry, type Registry } from './runtime/metrics.ts';
import { ProbeServer } from './runtime/server.ts';
import { KubeStatusWriter } from './runtime/status.ts';
import { EMPTY_FILE_CONFIG, loadConfigFile, type FileConfig } from './config-file.ts';
import { RegistryClient } from './registry/client.ts';
import { DigestWatcher } from './registry/watcher.ts';
import { WebhookServer } from './registry/webhooks/server.ts';
import { BuildCallbacks } from './controllers/rebuildtrigger/callbacks.ts';
import { TagLists } from './controllers/tag-lists.ts';
import { selectsWorkload } from './controllers/imagepolicy/select.ts';
import { applyPin } from './rollout/pin.ts';
import { ImageTrust } from './controllers/image-trust.ts';
import {
  ReportIndex,
  VulnerabilityReportType,
  slimReport,
  type SlimReport,
} from './controllers/vulnerability-reports.ts';
import { TrustedRootSource } from './verify/trusted-root.ts';
import { AdmissionRuntime } from './admission/runtime.ts';
import { AdmissionReviewer } from './admission/server.ts';
import { AdmissionTls } from './admission/tls.ts';
import { serviceHosts } from './admission/certificates.ts';
import { podChanged, slimPod, slimWorkload, type Pod, type Workload, type WorkloadKind } from './rollout/workloads.ts';

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

interface InformerSet<T extends KubeObject> {
  informers: Informer<T>[];
  get: (key: ObjectKey) => T | undefined;
  list: () => T[];
  /** The cached objects of one namespace. */
  inNamespace: (namespace: string) => T[];
  /** Calls `onChange` with every object added or deleted, and every one changed (and its old copy) as `changed` says. */
  onChange: (onChange: (obj: T, old?: T) => void, changed?: (a: T, b: T) => boolean) => void;
}

/** One informer per watched namespace, or one across all namespaces. */
function informersFor<T extends KubeObject>(
  type: ResourceType,
  config: Config,
  client: KubeClient,
  log: Logger,
  registry: Registry,
  transform?: (received: KubeObject) => T,
  optional = false,
): InformerSet<T> {
  const namespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : [''];
  const byNamespace = new Map<string, Informer<T>>();
  for (const ns of namespaces) {
    byNamespace.set(
      ns,
      new Informer<T>(client, {
        name: type.plural,
        path: collectionPath(type, ns || undefined),
        logger: log,
        registry,
        ...(transform ? { transform } : {}),
        ...(optional ? { optional } : {}),
      }),
    );
  }
  const all = byNamespace.get('');
  const informers = [...byNamespace.values()];
  return {
    informers,
    get: (key) => (all ?? byNamespace.get(key.namespace))?.get(`${key.namespace}/${key.name}`),
    list: () => informers.flatMap((i) => i.list()),
    inNamespace: (ns) => (all ?? byNamespace.get(ns))?.listNamespace(ns) ?? [],
    onChange: (onChange, changed = () => true) => {
      for (const i of informers)
        i.addHandlers({
          onAdd: (o) => onChange(o),
          onUpdate: (a, b) => {
            if (changed(a, b)) onChange(b, a);
          },
          onDelete: (o) => onChange(o),
        });
    },
  };
}

async function run(config: Config, fileConfig: FileConfig, log: Logger): Promise<number> {
  const registry = createRegistry(true);
  const kc = loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context });
  // The replica's identity in the User-Agent tells replicas apart in the API server's audit log.
  const client = await createKubeClient(kc, { registry, userAgent: `patchline/${version()} (${config.identity})` });
  log.info('starting patchline', {
    version: version(),
    identity: config.identity,
    server: client.server,
    watchNamespaces: config.watchNamespaces.length > 0 ? config.watchNamespaces : 'all',
    leaderElection: config.leaderElection.enabled,
  });

  const probes = new ProbeServer({ host: config.probe.host, port: config.probe.port, registry, logger: log });
  const address = await probes.start();
  log.info('serving /healthz, /readyz and /metrics', { address: `${address.address}:${address.port}` });

  const le = config.leaderElection;
  const elector = le.enabled
    ? new LeaderElector({
        store: new KubeLeaseStore(client, config.namespace, le.leaseName),
        identity: config.identity,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        logger: log,
        registry,
      })
    : undefined;
  const manager = new Manager({ logger: log, probes, ...(elector ? { elector } : {}) });
  const kubeEvents = new KubeEventRecorder({
    client,
    controller: EVENT_CONTROLLER,
    instance: config.identity,
    logger: log,
    registry,
  });
  // Every decision recorded as an Event is also an audit log line (what, why, which resource).
  const events = new AuditedEventRecorder(kubeEvents, log.child({ component: 'audit' }));
  const status = new KubeStatusWriter(client, registry);

  // Registries: one client and one digest watcher, shared by every resource. The watcher
  // checks only on the leader; webhooks are received on every replica (others answer 503).
  const registryClient = new RegistryClient({
    hosts: fileConfig.registries,
    userAgent: `patchline/${version()}`,
    registry,
  });
  const watcher = new DigestWatcher({ client: registryClient, logger: log, registry });
  manager.addLeaderTask((signal) => {
    watcher.start();
    signal.addEventListener('abort', () => watcher.stop(), { once: true });
  });
  const credentials = new CredentialResolver(client);
  const facts = new RegistryFacts(registryClient);
  const policies = informersFor<ImagePolicy>(ImagePolicyType, config, client, log, registry);
  const triggers = informersFor<RebuildTrigger>(RebuildTriggerType, config, client, log, registry);
  // What ImagePolicies govern and read: workloads and pods, cached slim (only the fields read).
  const workloadSets = WORKLOAD_TYPES.map(({ type, kind }) =>
    informersFor<Workload>(type, config, client, log, registry, slimWorkload(kind)),
  );
  const pods = informersFor<Pod>(PodType, config, client, log, registry, slimPod);
  for (const set of workloadSets) for (const i of set.informers) manager.addInformer(i);
  for (const i of pods.informers) manager.addInformer(i);
  // A workload, or one of its pods, changed: the policies that govern it look again (the
  // queue folds repeats). Only those: a namespace may hold many policies and many pods.
  const wakeGoverning = (namespace: string, workloads: readonly Workload[]): void => {
    for (const p of policies.inNamespace(namespace))
      if (workloads.some((w) => selectsWorkload(p, w)))
        policyController.enqueue(`${namespace}/${p.metadata?.name ?? ''}`);
  };
  for (const set of workloadSets) set.onChange((w, old) => wakeGoverning(w.metadata.namespace, old ? [w, old] : [w]));
  pods.onChange((pod) => {
    const [kind, name] = (pod.owner ?? '').split('/');
    const set = workloadSets[WORKLOAD_TYPES.findIndex((t) => t.kind === kind)];
    const owner = set?.get({ namespace: pod.metadata.namespace, name: name ?? '' });
    if (owner) wakeGoverning(pod.metadata.namespace, [owner]);
  }, podChanged);
  // A RebuildTrigger confirmed a new digest: policies following its image pick it up at once.
  // Its bases' digests changed: the provenance verdicts of those policies (requireBase) are
  // judged against them, so they look again too.
  const baseDigests = (t: RebuildTrigger): string =>
    (t.status?.bases ?? []).map((b) => `${b.digest ?? ''}|${JSON.stringify(b.platformDigests ?? {})}`).join(',');
  triggers.onChange(
    (t) => {
      const ns = t.metadata?.namespace ?? '';
      for (const p of policies.inNamespace(ns)) policyController.enqueue(`${ns}/${p.metadata?.name ?? ''}`);
    },
    (a, b) => a.status?.landed?.digest !== b.status?.landed?.digest || baseDigests(a) !== baseDigests(b),
  );
  // Trivy Operator's reports (optional CRD), by digest: a new scan of what a policy runs or
  // is about to run makes it look again — continuous scanning without any rollout.
  const reports = informersFor<SlimReport>(VulnerabilityReportType, config, client, log, registry, slimReport, true);
  const reportIndex = new ReportIndex();
  for (const i of reports.informers) {
    manager.addInformer(i);
    i.addHandlers({
      onAdd: (r) => reportIndex.set(r),
      onUpdate: (old, r) => reportIndex.set(r, old),
      onDelete: (r) => reportIndex.delete(r),
    });
  }
  reports.onChange(
    (r, old) => {
      const digests = new Set([r.digest, old?.digest].filter((d): d is string => !!d));
      if (digests.size === 0) return;
      for (const p of policies.list()) {
        if (!p.spec.verify?.vulnerabilities) continue;
        const st = p.status;
        if (
          (st?.latest?.digest && digests.has(st.latest.digest)) ||
          st?.workloads?.some((w) => w.runningDigest && digests.has(w.runningDigest))
        )
          policyController.enqueue(`${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`);
      }
    },
    (a, b) => a.digest !== b.digest || a.updated !== b.updated || a.findings.length !== b.findings.length,
  );
  const trust = new ImageTrust({
    client: registryClient,
    secrets: (ns, name, signal) => credentials.secretData(ns, name, 'signature key', signal),
    trustedRoot: new TrustedRootSource(fileConfig.sigstore),
    registry,
  });
  const wakePolicy = (key: string): void => policyController.enqueue(key);
  const tagLists = new TagLists(registryClient, (keys) => keys.forEach(wakePolicy));
  const policyController: Controller = new Controller({
    name: 'imagepolicy',
    reconciler: new ImagePolicyReconciler({
      get: policies.get,
      status,
      events,
      workloads: (ns) => workloadSets.flatMap((set) => set.inNamespace(ns)),
      pods: pods.inNamespace,
      triggers: triggers.inNamespace,
      watches: new ResourceWatches(watcher, wakePolicy),
      tagLists,
      credentials,
      facts,
      pin: (request, signal) => applyPin(client, request, signal),
      trust,
      reports: (digest, ns) => reportIndex.forDigest(digest, ns),
      registry,
    }),
    workers: config.workers,
    logger: log,
    registry,
  });
  manager.addController(policyController, policies.informers);
  // The reconciler wakes its own controller (a build slot freed): called only once it runs.
  const wakeTrigger = (key: string): void => triggerController.enqueue(key);
  const triggerController = new Controller({
    name: 'rebuildtrigger',
    reconciler: new RebuildTriggerReconciler({
      get: triggers.get,
      list: triggers.list,
      status,
      events,
      watches: new ResourceWatches(watcher, wakeTrigger),
      credentials,
      facts,
      slots: new BuildSlots(config.maxBuilds, wakeTrigger, registry),
      providers: defaultProviders(client),
      registry,
    }),
    workers: config.workers,
    logger: log,
    registry,
  });
  manager.addController(triggerController, triggers.informers);

  let webhooks: WebhookServer | undefined;
  if (fileConfig.webhooks.receivers.length > 0 || fileConfig.webhooks.buildCallbacks) {
    const w = fileConfig.webhooks;
    webhooks = new WebhookServer({
      host: config.webhook.host,
      port: config.webhook.port,
      receivers: w.receivers,
      // A push makes the watcher look at the pushed tag, and the tag lists of policies that
      // follow a range or pattern in that repository stale (a new tag may qualify).
      sink: { checkNow: (notice) => watcher.checkNow(notice) + tagLists.pushed(notice) },
      ...(w.buildCallbacks
        ? {
            callbacks: new BuildCallbacks({
              list: triggers.list,
              credentials,
              status,
              events,
              enqueue: wakeTrigger,
              logger: log.child({ component: 'build-callbacks' }),
            }),
          }
        : {}),
      logger: log,
      registry,
      isLeader: () => manager.isLeader(),
      ...(w.maxBodyBytes ? { maxBodyBytes: w.maxBodyBytes } : {}),
      ...(w.requestsPerSecond ? { requestsPerSecond: w.requestsPerSecond } : {}),
      ...(w.burst ? { burst: w.burst } : {}),
      ...(w.tls ? { tls: w.tls } : {}),
    });
    const at = await webhooks.start();
    log.info('receiving registry webhooks', {
      address: `${at.address}:${at.port}`,
      receivers: w.receivers.map((r) => `${r.name} (${r.format})`),
      buildCallbacks: Boolean(w.buildCallbacks),
      tls: Boolean(w.tls),
    });
  }

  let admission: AdmissionRuntime | undefined;
  const a = config.admission;
  if (a.address) {
    admission = new AdmissionRuntime({
      host: a.address.host,
      port: a.address.port,
      reviewer: new AdmissionReviewer({
        policies: (ns) => policies.inNamespace(ns).filter((p) => p.spec.suspend !== true),
        trust,
        registrySource: (p) => credentials.registrySource(p.metadata?.namespace ?? '', p.spec.registryAuth),
        events,
        log: log.child({ component: 'admission' }),
        deadlineMs: a.deadlineMs,
        registry,
      }),
      certificates: a.certDir
        ? { kind: 'files', dir: a.certDir }
        : {
            kind: 'managed',
            tls: new AdmissionTls({
              client,
              namespace: config.namespace,
              secretName: a.secret,
              webhookConfigurationName: a.webhookConfiguration,
              hosts: serviceHosts(a.service, config.namespace, a.certHosts),
              log: log.child({ component: 'admission' }),
            }),
          },
      ready: () => policies.informers.every((i) => i.hasSynced()),
      log: log.child({ component: 'admission' }),
    });
    const runtime = admission;
    manager.addLeaderTask((signal) => void runtime.lead(signal));
    runtime.start();
  }

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

  const outcome = await manager.run(stop.signal);
  watcher.stop();
  await webhooks?.stop();
  await admission?.stop();
  await kubeEvents.flush();
  await probes.stop();
  await registryClient.close();
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
