// Patchline at cluster scale, on the real test control plane and the local registry: P
// ImagePolicies (10,000 by default) over D Deployments with one pod each (20,000), following R
// distinct references (2,000) at interval 1m; one "fleet" policy selects F Deployments by label
// (500, rollout.maxConcurrent 50), every other policy selects one or two by name. Every
// Deployment starts on the digest its policy follows.
//
// Prints, in one run:
//   - start → every policy Ready and up to date, operator RSS settled and peak (per instance
//     with --shards);
//   - at rest for --idle-s: API writes, reconciles, registry requests (HEADs) per minute;
//   - rollout fan-out: one new digest for the fleet, time until all F run it, beside the same
//     F rollouts done by the bench itself (F control Deployments no policy governs, patched
//     with the same 50 at a time): the operator's overhead is the difference;
//   - a forced relist: kube-apiserver restarted and etcd compacted (every watch expires, every
//     informer relists): how long until every informer listed again, the writes it caused,
//     RSS peak through it.
// Ends with one line of JSON.
//
//   node bench/scale.ts [--policies 10000] [--deployments 20000] [--references 2000] [--fleet 500]
//                       [--max-concurrent 50] [--namespaces 20] [--shards 0] [--idle-s 60]
//                       [--workers N] [--log-level warn] [--heap-snapshot] [--cpu-prof] [--env KEY=VALUE ...]
//
// --cpu-prof writes each operator's CPU profile (.cpuprofile, whole run) into the working directory.
//
// --shards N (N ≥ 2): N operator instances, Flux-style: the default one owns the policies with no
// patchline.dev/shard label, instance k the policies labelled shard-k; policies are dealt round
// robin. Each instance's RSS and start-up time are printed.
//
// The operators run as separate processes under the shipped RBAC and NODE_OPTIONS, without
// leader election (a single API server away longer than the renew deadline costs a leader its
// lease).
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { ImagePolicy } from '../src/api/v1alpha1/index.ts';
import { sleep } from '../src/runtime/clock.ts';
import { Informer } from '../src/runtime/informer.ts';
import type { KubeObject } from '../src/runtime/kube-types.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { waitFor } from '../test/support/manual-clock.ts';
import { env as e2e, kubectl, newNamespace, setUp, tearDown } from '../test/e2e/support/env.ts';
import type { Operator } from '../test/e2e/support/operator.ts';
import { RebuildEnv } from '../test/e2e/support/rebuild-env.ts';
import { medianRssMiB, rssMiB, shippedNodeOptions } from './process-memory.ts';

const { values } = parseArgs({
  options: {
    policies: { type: 'string', default: '10000' },
    deployments: { type: 'string', default: '20000' },
    references: { type: 'string', default: '2000' },
    fleet: { type: 'string', default: '500' },
    'max-concurrent': { type: 'string', default: '50' },
    namespaces: { type: 'string', default: '20' },
    shards: { type: 'string', default: '0' },
    'idle-s': { type: 'string', default: '60' },
    workers: { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    'heap-snapshot': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    /** Extra environment for the operators, KEY=VALUE (e.g. MALLOC_ARENA_MAX=2). */
    env: { type: 'string', multiple: true, default: [] },
  },
});
const POLICIES = Number(values.policies);
const DEPLOYMENTS = Number(values.deployments);
const REFERENCES = Number(values.references);
const FLEET = Number(values.fleet);
const MAX_CONCURRENT = Number(values['max-concurrent']);
const NAMESPACES = Number(values.namespaces);
const SHARDS = Number(values.shards);
const IDLE_S = Number(values['idle-s']);
const SHARD_KEY = 'patchline.dev/shard';

const seconds = (ms: number): number => Math.round(ms / 100) / 10;
const log = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

interface Instance {
  name: string;
  /** Which policies it owns. */
  owns: (p: number) => boolean;
  selector: string | undefined;
  op?: Operator;
  peakRss: number;
  /** Peak RSS from start until at rest, before the relist. */
  startPeakMiB?: number;
  startToReadyS?: number;
  rssSettledMiB?: number;
}

interface SlimPolicy extends KubeObject {
  metadata: { name: string; namespace: string };
  status?: ImagePolicy['status'];
}

await setUp();
const env = await RebuildEnv.start({}, { requestsPerMinute: 60_000, webhookRequestsPerSecond: 1_000 });
const instances: Instance[] =
  SHARDS >= 2
    ? Array.from({ length: SHARDS }, (_, k) => ({
        name: k === 0 ? 'default' : `shard-${k}`,
        owns: (p: number) => p % SHARDS === k,
        selector: k === 0 ? `!${SHARD_KEY}` : `${SHARD_KEY}=shard-${k}`,
        peakRss: 0,
      }))
    : [{ name: 'single', owns: () => true, selector: undefined, peakRss: 0 }];
let result: Record<string, unknown> | undefined;
try {
  // --- Set-up: images, Deployments (running), then policies ---------------------------------
  const setupStart = Date.now();
  const refDigests: string[] = [];
  for (let r = 0; r < REFERENCES; r++)
    refDigests.push((await env.pusher.pushImage(`scale/r${r}`, 'stable', { seed: `scale-r${r}` })).digest);
  const fleetV1 = await env.pusher.pushImage('scale/fleet', 'fleet', { seed: 'fleet-v1' });
  const refImage = (r: number): string => `${env.registry.host}/scale/r${r}`;
  const fleetImage = `${env.registry.host}/scale/fleet`;
  log(`pushed ${REFERENCES + 1} repositories in ${seconds(Date.now() - setupStart)} s`);

  const namespaces = Array.from({ length: NAMESPACES }, () => newNamespace('bench-scale'));
  const controlNs = newNamespace('bench-scale-control');
  const nsOf = (policy: number): string => namespaces[policy % NAMESPACES]!;
  const refOf = (policy: number): number => policy % REFERENCES;
  // Deployments 0..FLEET-1 belong to the fleet policy (0); the others are dealt over the rest.
  const ownerOf = (d: number): number => (d < FLEET ? 0 : 1 + ((d - FLEET) % (POLICIES - 1)));
  const deployment = (name: string, ns: string, image: string, labels: Record<string, string>): string =>
    stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
      },
    });
  const names = new Map<number, string[]>();
  const docs: string[] = [];
  for (let d = 0; d < DEPLOYMENTS; d++) {
    const p = ownerOf(d);
    if (d >= FLEET) names.set(p, [...(names.get(p) ?? []), `app-${d}`]);
    docs.push(
      d < FLEET
        ? deployment(`app-${d}`, nsOf(p), `${fleetImage}@${fleetV1.digest}`, { group: 'fleet' })
        : deployment(`app-${d}`, nsOf(p), `${refImage(refOf(p))}@${refDigests[refOf(p)]!}`, {}),
    );
  }
  // The control fleet: the same rollouts, done by the bench, to tell the operator's overhead.
  for (let c = 0; c < FLEET; c++)
    docs.push(deployment(`ctl-${c}`, controlNs, `${fleetImage}@${fleetV1.digest}`, { group: 'control' }));
  const apply = (batch: string[]): void => {
    for (let i = 0; i < batch.length; i += 500)
      kubectl(['apply', '--server-side', '-f', '-'], { input: batch.slice(i, i + 500).join('---\n') });
  };
  apply(docs);
  log(`applied ${docs.length} Deployments in ${seconds(Date.now() - setupStart)} s`);

  /** Every object of a kind across all namespaces, page by page. */
  // The bench's own client may find its connection gone after the API server restart: a
  // request is tried again, up to three times.
  const retrying = async <T>(call: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (attempt === 3) throw err;
        await sleep(1000);
      }
    }
  };
  const listAll = async <T>(path: string): Promise<T[]> => {
    const items: T[] = [];
    let next: string | undefined;
    do {
      const page = await retrying(() =>
        e2e().admin.requestJson<{ items: T[]; metadata: { continue?: string } }>('GET', path, {
          query: { limit: '2000', ...(next ? { continue: next } : {}) },
        }),
      );
      items.push(...page.items);
      next = page.metadata.continue || undefined;
    } while (next);
    return items;
  };
  interface SlimDeployment {
    metadata: { name: string; namespace: string; generation?: number };
    spec?: { template?: { spec?: { containers?: { image?: string }[] } } };
    status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; availableReplicas?: number };
  }
  const rolledOut = (d: SlimDeployment): boolean =>
    d.status?.observedGeneration === d.metadata.generation &&
    d.status?.replicas === 1 &&
    d.status.updatedReplicas === 1 &&
    d.status.availableReplicas === 1;
  let available = 0;
  await waitFor(
    async () => {
      available = (await listAll<SlimDeployment>('/apis/apps/v1/deployments')).filter(
        (d) => d.metadata.namespace.startsWith('bench-scale') && rolledOut(d),
      ).length;
      return available === docs.length;
    },
    `${docs.length} Deployments available`,
    3_600_000,
    5000,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)} (${available} available)`);
  });
  log(`${docs.length} Deployments available (one pod each) after ${seconds(Date.now() - setupStart)} s`);

  const policy = (p: number): string => {
    const owner = instances.find((i) => i.owns(p))!;
    const shardLabel = owner.selector?.startsWith('!') === false ? { [SHARD_KEY]: owner.name } : undefined;
    return stringify({
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: {
        name: p === 0 ? 'fleet' : `p-${p}`,
        namespace: nsOf(p),
        ...(shardLabel ? { labels: shardLabel } : {}),
      },
      spec: {
        image: p === 0 ? fleetImage : refImage(refOf(p)),
        follow: { tag: p === 0 ? 'fleet' : 'stable' },
        interval: '1m',
        workloads:
          p === 0 ? { selector: { matchLabels: { group: 'fleet' } } } : { names: names.get(p) ?? [`none-${p}`] },
        verify: { registries: [env.registry.host] },
        ...(p === 0 ? { rollout: { maxConcurrent: MAX_CONCURRENT } } : {}),
      },
    });
  };
  apply(Array.from({ length: POLICIES }, (_, p) => policy(p)));
  log(`set-up done in ${seconds(Date.now() - setupStart)} s`);

  // --- Start → every policy Ready and up to date -------------------------------------------
  // Followed by a watch, as any observer would: listing 10,000 policies every few seconds
  // would cost the API server (on the same two cores) more than the operator's writes.
  const policyWatch = new Informer<SlimPolicy>(e2e().admin, {
    name: 'bench-imagepolicies',
    path: '/apis/patchline.dev/v1alpha1/imagepolicies',
    logger: silentLogger(),
    transform: (o) => {
      const p = o as unknown as SlimPolicy;
      return { metadata: { name: p.metadata.name, namespace: p.metadata.namespace }, status: p.status };
    },
  });
  await policyWatch.start();
  const policies = (): Promise<SlimPolicy[]> => Promise.resolve(policyWatch.list());
  const indexOf = (p: SlimPolicy): number => (p.metadata.name === 'fleet' ? 0 : Number(p.metadata.name.slice(2)));
  const settled = (p: SlimPolicy): boolean => {
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
    const [n, m] = (p.status?.upToDate ?? '').split('/');
    return ready?.status === 'True' && n === m && (Number(m) > 0 || (p.status?.workloads ?? []).length === 0);
  };
  const t0 = Date.now();
  await Promise.all(
    instances.map(async (inst, k) => {
      inst.op = await env.operator(
        `op-bench-scale-${inst.name}`,
        `bench-scale-${inst.name}`,
        [
          '--leader-elect',
          'false',
          '--log-level',
          values['log-level'],
          ...(values.workers ? ['--workers', values.workers] : []),
          ...(inst.selector ? ['--watch-label-selector', inst.selector] : []),
        ],
        k % 2,
        {
          ...Object.fromEntries(values.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
          NODE_OPTIONS: [
            shippedNodeOptions(),
            values['heap-snapshot'] ? '--heapsnapshot-signal=SIGUSR2' : '',
            values['cpu-prof'] ? `--cpu-prof --cpu-prof-dir=${process.cwd()}` : '',
          ]
            .filter(Boolean)
            .join(' '),
        },
      );
    }),
  );
  const sampler = setInterval(() => {
    for (const i of instances) if (i.op?.pid) i.peakRss = Math.max(i.peakRss, rssMiB(i.op.pid));
  }, 500);
  const pending = new Set(instances);
  await waitFor(
    async () => {
      const all = (await policies()).filter((p) => p.metadata.namespace.startsWith('bench-scale'));
      for (const inst of [...pending]) {
        const mine = all.filter((p) => inst.owns(indexOf(p)));
        if (mine.length > 0 && mine.every(settled)) {
          inst.startToReadyS = seconds(Date.now() - t0);
          pending.delete(inst);
          log(`${inst.name}: ${mine.length} policies Ready and up to date ${inst.startToReadyS} s after start`);
        }
      }
      return pending.size === 0;
    },
    'every policy Ready and up to date',
    3_600_000,
    500,
  );
  const startToAllReadyS = seconds(Date.now() - t0);

  // --- At rest ------------------------------------------------------------------------------
  const sum = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
    (await Promise.all(instances.map((i) => i.op!.metric(name, labels)))).reduce((a, b) => a + b, 0);
  const writes = async (): Promise<number> => {
    let n = 0;
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) n += await sum('rest_client_requests_total', { method });
    return n;
  };
  await sleep(15_000); // the settling phase's requeues run out
  for (const inst of instances) inst.rssSettledMiB = Math.round(await medianRssMiB(inst.op!.pid!));
  const [w0, r0, h0, q0] = [
    await writes(),
    await sum('controller_runtime_reconcile_total'),
    await sum('patchline_registry_requests_total', { method: 'HEAD' }),
    await sum('patchline_registry_requests_total'),
  ];
  await sleep(IDLE_S * 1000);
  const perMinute = (d: number): number => Math.round((d * 600) / IDLE_S) / 10;
  const idle = {
    writesPerMinute: perMinute((await writes()) - w0),
    reconcilesPerMinute: perMinute((await sum('controller_runtime_reconcile_total')) - r0),
    registryHeadsPerMinute: perMinute((await sum('patchline_registry_requests_total', { method: 'HEAD' })) - h0),
    registryRequestsPerMinute: perMinute((await sum('patchline_registry_requests_total')) - q0),
    distinctReferences: REFERENCES + 1,
  };
  if (values['log-level'] === 'debug') {
    // What was reconciled at rest, and why it was looked at: the operators' own debug lines.
    const idleStart = new Date(Date.now() - IDLE_S * 1000).toISOString();
    const lines = instances.flatMap((i) =>
      i.op!.logs.filter((l) => l.message === 'reconciled' && l.timestamp >= idleStart),
    );
    const byKey = new Map<string, number>();
    for (const l of lines) {
      const key = `${JSON.stringify(l.controller ?? '')} ${JSON.stringify(l.resource ?? '')}`;
      byKey.set(key, (byKey.get(key) ?? 0) + 1);
    }
    const all = instances.flatMap((i) => i.op!.logs);
    const messages = new Map<string, number>();
    for (const l of all.filter((x) => x.timestamp >= idleStart))
      messages.set(l.message, (messages.get(l.message) ?? 0) + 1);
    log(
      `log lines: ${all.length}, in the idle window by message: ${JSON.stringify([...messages])}; last: ${JSON.stringify(all.at(-1))}`,
    );
    const firstKey = lines[0]?.resource;
    log(
      `every reconcile of ${String(firstKey)}: ${JSON.stringify(all.filter((x) => x.message === 'reconciled' && x.resource === firstKey))}`,
    );
    log(
      `other lines in the idle window: ${JSON.stringify(all.filter((x) => x.timestamp >= idleStart && x.message !== 'reconciled').slice(0, 4))}`,
    );
    log(
      `reconciled at rest: ${lines.length}; most often: ${JSON.stringify([...byKey].sort((a, b) => b[1] - a[1]).slice(0, 10))}; sample: ${JSON.stringify(lines.slice(0, 3))}`,
    );
  }
  const mib = async (metric: string): Promise<number> => Math.round((await sum(metric)) / 1048576);
  const heapMiB = await mib('nodejs_heap_size_used_bytes');
  const memory = {
    heapUsedMiB: heapMiB,
    heapTotalMiB: await mib('nodejs_heap_size_total_bytes'),
    externalMiB: await mib('nodejs_external_memory_bytes'),
  };
  const reconcilesByController = Object.fromEntries(
    await Promise.all(
      ['imagepolicy', 'rebuildtrigger', 'gitwriteback'].map(
        async (c) => [c, await sum('controller_runtime_reconcile_total', { controller: c })] as const,
      ),
    ),
  );
  log(
    `memory at rest: ${JSON.stringify(memory)}; reconciles since start by controller: ${JSON.stringify(reconcilesByController)}`,
  );

  for (const inst of instances)
    log(`${inst.name}: RSS ${inst.rssSettledMiB} MiB settled, ${Math.round(inst.peakRss)} MiB peak`);
  log(
    `at rest (${IDLE_S} s): ${idle.writesPerMinute} API writes/min, ${idle.reconcilesPerMinute} reconciles/min, ${idle.registryHeadsPerMinute} registry HEADs/min of ${idle.registryRequestsPerMinute} requests/min (${idle.distinctReferences} distinct references at 1m); heap used ${heapMiB} MiB`,
  );

  // --- Rollout fan-out -----------------------------------------------------------------------
  // Before the forced relist: after it, kube-controller-manager and the fakelet relist and
  // resync every Deployment, ReplicaSet and pod too, and the fan-out would measure that.
  for (const inst of instances) {
    inst.startPeakMiB = Math.round(inst.peakRss);
    inst.peakRss = 0;
  }
  const fleetV2 = await env.pusher.pushImage('scale/fleet', 'fleet', { seed: 'fleet-v2' });
  const f0 = Date.now();
  let peakRolling = 0;
  let firstPinS: number | undefined;
  await waitFor(
    async () => {
      const s =
        (
          await retrying(() =>
            e2e().admin.requestJson<ImagePolicy>(
              'GET',
              `/apis/patchline.dev/v1alpha1/namespaces/${nsOf(0)}/imagepolicies/fleet`,
            ),
          )
        ).status ?? {};
      const rolling = (s.workloads ?? []).filter((w) => w.state === 'Rolling').length;
      peakRolling = Math.max(peakRolling, rolling);
      if (rolling > 0 && firstPinS === undefined) firstPinS = seconds(Date.now() - f0);
      return s.latest?.digest === fleetV2.digest && s.upToDate === `${FLEET}/${FLEET}`;
    },
    'fleet rolled to the new digest',
    3_600_000,
    250,
  );
  const operatorFanOutS = seconds(Date.now() - f0);
  log(
    `fan-out: ${FLEET} Deployments on the new digest ${operatorFanOutS} s after the push (first pinned after ${firstPinS} s, at most ${peakRolling} rolling at once)`,
  );

  // The same rollouts without the operator: the bench patches the control fleet, keeping
  // MAX_CONCURRENT rolling at once, and waits for every rollout to complete.
  const b0 = Date.now();
  const waiting = Array.from({ length: FLEET }, (_, c) => `ctl-${c}`);
  const rolling = new Set<string>();
  let done = 0;
  while (done < FLEET) {
    while (rolling.size < MAX_CONCURRENT && waiting.length > 0) {
      const name = waiting.shift()!;
      await retrying(() =>
        e2e().admin.requestJson('PATCH', `/apis/apps/v1/namespaces/${controlNs}/deployments/${name}`, {
          body: {
            spec: { template: { spec: { containers: [{ name: 'app', image: `${fleetImage}@${fleetV2.digest}` }] } } },
          },
          contentType: 'application/strategic-merge-patch+json',
        }),
      );
      rolling.add(name);
    }
    await sleep(250);
    const list = await listAll<SlimDeployment>(`/apis/apps/v1/namespaces/${controlNs}/deployments`);
    for (const d of list)
      if (
        rolling.has(d.metadata.name) &&
        rolledOut(d) &&
        d.spec?.template?.spec?.containers?.[0]?.image?.endsWith(fleetV2.digest)
      ) {
        rolling.delete(d.metadata.name);
        done++;
      }
  }
  const baselineFanOutS = seconds(Date.now() - b0);
  log(
    `the same ${FLEET} rollouts by the bench, ${MAX_CONCURRENT} at once: ${baselineFanOutS} s; operator overhead ${seconds((operatorFanOutS - baselineFanOutS) * 1000)} s`,
  );
  // --- A forced relist: the API server restarts, every watch expires ---------------------------
  const informers = ['imagepolicies', 'deployments', 'pods', 'statefulsets', 'daemonsets'];
  const lists = () => Promise.all(informers.map((i) => sum('patchline_informer_lists_total', { informer: i })));
  const watches = () => Promise.all(informers.map((i) => sum('patchline_informer_watches_total', { informer: i })));
  const listsBefore = await lists();
  const watchesBefore = await watches();
  const writesBefore = await writes();
  const restartMs = await e2e().cp.restartApiServer();
  const rl0 = Date.now();
  // testcp compacts etcd while the server is down: every informer of every instance is told
  // its resourceVersion is gone (410), relists, and watches again.
  await waitFor(
    async () =>
      (await watches()).every((n, i) => n >= watchesBefore[i]! + instances.length) &&
      (await lists()).every((n, i) => n >= listsBefore[i]! + instances.length),
    'every informer of every instance relisted and watching again',
    600_000,
    250,
  );
  const relistS = seconds(Date.now() - rl0);
  const listsAfter = await lists();
  const relisted = informers.filter((_, i) => listsAfter[i]! >= listsBefore[i]! + instances.length);
  await sleep(10_000);
  const relist = {
    apiServerRestartS: seconds(restartMs),
    relistAfterRestartS: relistS,
    relisted,
    writes: (await writes()) - writesBefore,
    rssPeakMiB: Object.fromEntries(instances.map((i) => [i.name, Math.round(i.peakRss)])),
    stillSettled: (await policies()).filter((p) => p.metadata.namespace.startsWith('bench-scale')).every(settled),
  };
  log(
    `forced relist: kube-apiserver back in ${relist.apiServerRestartS} s, every informer relisted and watching again ${relistS} s later (${relisted.join(', ')}), ${relist.writes} API writes, RSS peak ${JSON.stringify(relist.rssPeakMiB)} MiB, every policy still settled: ${relist.stillSettled}`,
  );

  clearInterval(sampler);

  result = {
    bench: 'scale',
    policies: POLICIES,
    deployments: DEPLOYMENTS,
    pods: DEPLOYMENTS,
    references: REFERENCES + 1,
    shards: instances.length,
    startToAllReadyS,
    instances: instances.map((i) => ({
      name: i.name,
      policies: Array.from({ length: POLICIES }, (_, p) => p).filter(i.owns).length,
      startToReadyS: i.startToReadyS,
      rssSettledMiB: i.rssSettledMiB,
      rssPeakMiB: i.startPeakMiB,
      rssPeakThroughRelistAndFanOutMiB: Math.round(i.peakRss),
    })),
    heapUsedMiB: heapMiB,
    memory,
    idle,
    relist,
    fanOut: {
      workloads: FLEET,
      maxConcurrent: MAX_CONCURRENT,
      operatorS: operatorFanOutS,
      firstPinS,
      peakRolling,
      baselineS: baselineFanOutS,
      overheadS: seconds((operatorFanOutS - baselineFanOutS) * 1000),
    },
  };
  // Last, so that writing it (which takes memory and time) changes no figure above.
  if (values['heap-snapshot']) {
    for (const inst of instances) process.kill(inst.op!.pid!, 'SIGUSR2');
    await sleep(60_000); // a snapshot of a few hundred MiB takes a while to write
    log('heap snapshots written into the working directory (node bench/heap-summary.ts <file>)');
  }
  await policyWatch.stop();
  for (const inst of instances) await inst.op!.stop();
} finally {
  await env.stop();
  await tearDown();
}
console.log(JSON.stringify(result ?? { bench: 'scale', failed: true }));
