// What pods no policy governs cost the operator: one policy governing a 2-replica Deployment,
// then D Deployments of R replicas each (20 × 1,000 by default) that no policy selects, on the
// real test control plane. Prints the operator's RSS (and peak) and heap before and after, and
// the pods it caches (only the governed ones should be).
//
//   node bench/pods.ts [--deployments 20] [--replicas 1000] [--settle-s 30] [--node-options=...]
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { waitFor } from '../test/support/manual-clock.ts';
import { env as e2e, kubectl, newNamespace, setUp, tearDown } from '../test/e2e/support/env.ts';
import { applyPolicy, applyWorkload } from '../test/e2e/support/policies.ts';
import { RebuildEnv } from '../test/e2e/support/rebuild-env.ts';
import { rssMiB, shippedNodeOptions } from './process-memory.ts';
import { sleep } from '../src/runtime/clock.ts';

const { values } = parseArgs({
  options: {
    deployments: { type: 'string', default: '20' },
    replicas: { type: 'string', default: '1000' },
    'settle-s': { type: 'string', default: '30' },
    'node-options': { type: 'string' },
  },
});
const DEPLOYMENTS = Number(values.deployments);
const REPLICAS = Number(values.replicas);
const SETTLE_S = Number(values['settle-s']);

await setUp();
const env = await RebuildEnv.start();
let figures: Record<string, number>;
try {
  const ns = newNamespace('bench-pods');
  const image = await env.pusher.pushImage('bench/pods', '1', { seed: 'pods' });
  const pinned = `${env.registry.host}/bench/pods@${image.digest}`;
  applyWorkload(ns, 'Deployment', 'governed', pinned, { replicas: 2 });
  applyPolicy(ns, 'governed', {
    image: `${env.registry.host}/bench/pods`,
    follow: { tag: '1' },
    workloads: { names: ['governed'] },
    verify: { registries: [env.registry.host] },
  });
  const nodeOptions = values['node-options'] ?? shippedNodeOptions();
  const op = await env.operator('op-bench-pods', 'bench-pods', ['--leader-elect', 'false', '--log-level', 'warn'], 0, {
    NODE_OPTIONS: nodeOptions,
  });
  const cached = () => op.metric('patchline_informer_objects', { informer: 'pods' });
  const full = () => op.metric('patchline_pods_governed');
  await waitFor(async () => (await full()) === 2, 'the two governed pods cached', 120_000, 500);
  await sleep(SETTLE_S * 1000);
  const before = { rss: rssMiB(op.pid!), heap: await op.metric('nodejs_heap_size_used_bytes'), pods: await cached() };

  const crowd = newNamespace('bench-crowd');
  const started = Date.now();
  kubectl(['apply', '-n', crowd, '-f', '-'], {
    input: Array.from({ length: DEPLOYMENTS }, (_, d) =>
      stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: `crowd-${d}` },
        spec: {
          replicas: REPLICAS,
          selector: { matchLabels: { app: `crowd-${d}` } },
          template: {
            metadata: { labels: { app: `crowd-${d}` } },
            spec: { containers: [{ name: 'app', image: pinned }] },
          },
        },
      }),
    ).join('---\n'),
  });
  const total = DEPLOYMENTS * REPLICAS;
  let peak = rssMiB(op.pid!);
  // The pods exist once the API server counts them (a list of one says how many remain); the
  // operator has seen them a moment later, which the settle time after covers.
  const existing = async (): Promise<number> => {
    const page = await e2e().admin.requestJson<{ items: unknown[]; metadata?: { remainingItemCount?: number } }>(
      'GET',
      `/api/v1/namespaces/${crowd}/pods`,
      { query: { limit: 1 } },
    );
    return page.items.length + (page.metadata?.remainingItemCount ?? 0);
  };
  await waitFor(
    async () => {
      peak = Math.max(peak, rssMiB(op.pid!));
      return (await existing()) >= total;
    },
    `${total} pods created`,
    1_800_000,
    1000,
  );
  const seenAfterS = (Date.now() - started) / 1000;
  for (let i = 0; i < SETTLE_S; i++) {
    peak = Math.max(peak, rssMiB(op.pid!));
    await sleep(1000);
  }
  const after = { rss: rssMiB(op.pid!), heap: await op.metric('nodejs_heap_size_used_bytes'), pods: await cached() };
  const fullAfter = await full();
  await op.stop();
  figures = {
    ungovernedPods: total,
    seenAfterS: Math.round(seenAfterS),
    rssBeforeMiB: Math.round(before.rss),
    rssAfterMiB: Math.round(after.rss),
    rssPeakMiB: Math.round(peak),
    rssGrowthMiB: Math.round((after.rss - before.rss) * 10) / 10,
    heapGrowthMiB: Math.round(((after.heap - before.heap) / 1048576) * 10) / 10,
    bytesPerUngovernedPod: Math.round((after.heap - before.heap) / total),
    podsCached: after.pods,
    podsGoverned: fullAfter,
  };
  console.log(
    `${total} pods no policy governs (${DEPLOYMENTS} Deployments × ${REPLICAS}), all created after ${figures.seenAfterS} s:`,
  );
  console.log(
    `  operator RSS ${figures.rssBeforeMiB} → ${figures.rssAfterMiB} MiB (+${figures.rssGrowthMiB}; peak ${figures.rssPeakMiB}), heap used +${figures.heapGrowthMiB} MiB (${figures.bytesPerUngovernedPod} bytes a pod)`,
  );
  console.log(`  pods cached: ${after.pods} (governed: ${fullAfter})`);
} finally {
  await env.stop();
  await tearDown();
}
console.log(JSON.stringify({ bench: 'pods', ...figures }));
