// ImagePolicies at scale: N policies (2,000 by default) and M Deployments (4,000) with one pod
// each, on the real test control plane and a real registry. One "fleet" policy selects 500
// of the Deployments by label (rollout.maxConcurrent 50); every other policy selects one or
// two Deployments by name. Every Deployment starts on the digest its policy follows.
//
// Prints: time from operator start until every policy is Ready and up to date (with the API
// writes and registry requests on the way), operator memory, API writes and registry requests
// per minute when nothing changes (the goal is no writes), and the time to roll the fleet's 500
// Deployments after one new digest, with the most rolling at once; then one line of JSON.
//
//   node bench/imagepolicy.ts [--policies 2000] [--deployments 4000] [--fleet 500] [--max-concurrent 50] [--idle-s 60]
//
// The operator runs as a separate process under its shipped RBAC, as in the end-to-end suite.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { ImagePolicy } from '../src/api/v1alpha1/index.ts';
import { waitFor } from '../test/support/manual-clock.ts';
import { env as e2e, kubectl, newNamespace, setUp, tearDown } from '../test/e2e/support/env.ts';
import { RebuildEnv } from '../test/e2e/support/rebuild-env.ts';
import { rssMiB } from './process-memory.ts';

const { values } = parseArgs({
  options: {
    policies: { type: 'string', default: '2000' },
    deployments: { type: 'string', default: '4000' },
    fleet: { type: 'string', default: '500' },
    'max-concurrent': { type: 'string', default: '50' },
    namespaces: { type: 'string', default: '10' },
    'idle-s': { type: 'string', default: '60' },
  },
});
const POLICIES = Number(values.policies);
const DEPLOYMENTS = Number(values.deployments);
const FLEET = Number(values.fleet);
const MAX_CONCURRENT = Number(values['max-concurrent']);
const NAMESPACES = Number(values.namespaces);
const IDLE_S = Number(values['idle-s']);

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface PolicyList {
  items: ImagePolicy[];
}

await setUp();
const env = await RebuildEnv.start({}, { requestsPerMinute: 60_000, webhookRequestsPerSecond: 1_000 });
try {
  const stable = await env.pusher.pushImage('bench/app', 'stable', { seed: 'stable' });
  const fleetV1 = await env.pusher.pushImage('bench/app', 'fleet', { seed: 'fleet-v1' });
  const repo = `${env.registry.host}/bench/app`;
  const namespaces = Array.from({ length: NAMESPACES }, () => newNamespace('bench-ipol'));
  const nsOf = (policy: number): string => namespaces[policy % NAMESPACES]!;

  // Deployments 0..FLEET-1 belong to the fleet policy (0); the others are spread over the rest.
  const ownerOf = (d: number): number => (d < FLEET ? 0 : 1 + ((d - FLEET) % (POLICIES - 1)));
  const deployment = (d: number): string => {
    const fleet = d < FLEET;
    return stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `app-${d}`, namespace: nsOf(ownerOf(d)), labels: fleet ? { group: 'fleet' } : {} },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: `app-${d}` } },
        template: {
          metadata: { labels: { app: `app-${d}` } },
          spec: {
            containers: [{ name: 'app', image: `${repo}@${fleet ? fleetV1.digest : stable.digest}` }],
          },
        },
      },
    });
  };
  const names = new Map<number, string[]>();
  for (let d = FLEET; d < DEPLOYMENTS; d++) {
    const p = ownerOf(d);
    names.set(p, [...(names.get(p) ?? []), `app-${d}`]);
  }
  const policy = (p: number): string =>
    stringify({
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name: p === 0 ? 'fleet' : `p-${p}`, namespace: nsOf(p) },
      spec: {
        image: repo,
        follow: { tag: p === 0 ? 'fleet' : 'stable' },
        workloads:
          p === 0 ? { selector: { matchLabels: { group: 'fleet' } } } : { names: names.get(p) ?? [`none-${p}`] },
        verify: { registries: [env.registry.host] },
        ...(p === 0 ? { rollout: { maxConcurrent: MAX_CONCURRENT } } : {}),
      },
    });

  const apply = (docs: string[]): void => {
    for (let i = 0; i < docs.length; i += 500)
      kubectl(['apply', '--server-side', '-f', '-'], { input: docs.slice(i, i + 500).join('---\n') });
  };
  const setupStart = Date.now();
  apply(Array.from({ length: DEPLOYMENTS }, (_, d) => deployment(d)));
  const available = async (): Promise<number> => {
    let n = 0;
    for (const ns of namespaces) {
      const list = await e2e().admin.requestJson<{ items: { status?: { availableReplicas?: number } }[] }>(
        'GET',
        `/apis/apps/v1/namespaces/${ns}/deployments`,
      );
      n += list.items.filter((d) => d.status?.availableReplicas === 1).length;
    }
    return n;
  };
  await waitFor(
    async () => (await available()) === DEPLOYMENTS,
    `${DEPLOYMENTS} deployments available`,
    1_800_000,
    2000,
  );
  apply(Array.from({ length: POLICIES }, (_, p) => policy(p)));
  console.log(
    `set-up: ${DEPLOYMENTS} Deployments (one pod each) and ${POLICIES} ImagePolicies in ${seconds(Date.now() - setupStart)}`,
  );

  const policies = async (): Promise<ImagePolicy[]> =>
    (
      await Promise.all(
        namespaces.map((ns) =>
          e2e().admin.requestJson<PolicyList>('GET', `/apis/patchline.dev/v1alpha1/namespaces/${ns}/imagepolicies`),
        ),
      )
    ).flatMap((l) => l.items);
  const settled = (p: ImagePolicy): boolean => {
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
    const [n, m] = (p.status?.upToDate ?? '').split('/');
    return ready?.status === 'True' && n === m && Number(m) > 0;
  };

  const op = await env.operator('op-bench-ipol', 'bench-ipol', ['--leader-elect', 'false', '--log-level', 'warn']);
  const pid = op.pid!;
  const t0 = Date.now();
  let peakRss = rssMiB(pid);
  const sampleRss = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(pid))), 500);
  await waitFor(
    async () => (await policies()).every(settled),
    `${POLICIES} policies Ready and up to date`,
    1_800_000,
    2000,
  );
  const readyAfter = Date.now() - t0;
  const writesAtReady = await writes();
  const registryAtReady = await registryRequests();
  const settledRss = rssMiB(pid);
  const peakRssAtReady = peakRss;
  console.log(
    `operator start → every policy Ready and up to date: ${seconds(readyAfter)} (${writesAtReady} API writes, ${registryAtReady} registry requests on the way)`,
  );
  console.log(
    `  operator memory: ${settledRss.toFixed(0)} MiB RSS once settled, ${peakRssAtReady.toFixed(0)} MiB peak`,
  );

  // Nothing changes: count the operator's writes (no leader election in this run).
  async function writes(): Promise<number> {
    let n = 0;
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'])
      n += await op.metric('rest_client_requests_total', { method });
    return n;
  }
  async function registryRequests(): Promise<number> {
    return op.metric('patchline_registry_requests_total', { registry: env.registry.host });
  }
  // Let requeues of the settling phase run out first.
  await new Promise((r) => setTimeout(r, 10_000));
  const before = await writes();
  const registryBefore = await registryRequests();
  const reconcilesBefore = await op.metric('controller_runtime_reconcile_total', { controller: 'imagepolicy' });
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const idleWrites = (await writes()) - before;
  const idleRegistry = (await registryRequests()) - registryBefore;
  const idleReconciles =
    (await op.metric('controller_runtime_reconcile_total', { controller: 'imagepolicy' })) - reconcilesBefore;
  console.log(
    `  idle for ${IDLE_S} s: ${idleWrites} API writes (${((idleWrites * 60) / IDLE_S).toFixed(1)} per minute), ${idleReconciles} reconciles, ${idleRegistry} registry requests`,
  );

  // One new digest for the fleet: 500 Deployments roll, at most MAX_CONCURRENT at a time.
  const fleetNs = nsOf(0);
  const fleetStatus = async () =>
    (
      await e2e().admin.requestJson<ImagePolicy>(
        'GET',
        `/apis/patchline.dev/v1alpha1/namespaces/${fleetNs}/imagepolicies/fleet`,
      )
    ).status ?? {};
  const fleetV2 = await env.pusher.pushImage('bench/app', 'fleet', { seed: 'fleet-v2' });
  const r0 = Date.now();
  let peakRolling = 0;
  let firstPinAt: number | undefined;
  await waitFor(
    async () => {
      const s = await fleetStatus();
      const rolling = (s.workloads ?? []).filter((w) => w.state === 'Rolling').length;
      peakRolling = Math.max(peakRolling, rolling);
      if (rolling > 0 && firstPinAt === undefined) firstPinAt = Date.now() - r0;
      return s.latest?.digest === fleetV2.digest && s.upToDate === `${FLEET}/${FLEET}`;
    },
    `fleet rolled to the new digest`,
    1_800_000,
    500,
  );
  const rolled = Date.now() - r0;
  clearInterval(sampleRss);
  console.log(`one new digest, ${FLEET} Deployments, maxConcurrent ${MAX_CONCURRENT}:`);
  console.log(
    `  every Deployment up to date (every pod on the new digest) after ${seconds(rolled)}; first pinned after ${seconds(firstPinAt ?? NaN)}; at most ${peakRolling} rolling at once (status samples)`,
  );
  console.log(
    `  operator memory: ${rssMiB(pid).toFixed(0)} MiB RSS after, ${peakRss.toFixed(0)} MiB peak over the run`,
  );
  await op.stop();
  console.log(
    JSON.stringify({
      bench: 'imagepolicy',
      policies: POLICIES,
      deployments: DEPLOYMENTS,
      startToReadyS: readyAfter / 1000,
      apiWritesToReady: writesAtReady,
      registryRequestsToReady: registryAtReady,
      settledRssMiB: Math.round(settledRss),
      idleApiWritesPerMinute: (idleWrites * 60) / IDLE_S,
      idleRegistryRequestsPerMinute: (idleRegistry * 60) / IDLE_S,
      fleet: FLEET,
      fleetRolledS: rolled / 1000,
      firstPinS: (firstPinAt ?? NaN) / 1000,
      peakRolling,
      peakRssMiB: Math.round(peakRss),
    }),
  );
} finally {
  await env.stop();
  await tearDown();
}
