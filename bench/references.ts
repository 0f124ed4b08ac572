// Following N distinct references, nothing else: N ImagePolicies, each following its own
// repository at one tag with interval 1m and selecting no workload, on the real test control
// plane and the local registry (no per-minute budget, as a private registry has by default).
// For each N: operator RSS once settled and memory per reference (against the idle operator),
// time from operator start until every policy is Ready, and at rest for a minute the registry
// requests and new connections (from the operator's own counters).
//
//   node bench/references.ts [--counts 50,500,2000] [--rest-s 60] [--heap-snapshot] [--node-options=...]
//
// --heap-snapshot: at rest, the operator of the largest N writes a V8 heap snapshot (SIGUSR2)
// into the working directory; `node bench/heap-summary.ts <file>` says what holds the heap.
//
// The shape of the comparison table in issue 18 (Flux image-reflector-controller beside
// Patchline): N, RSS, start to all ready, requests and new connections per minute at rest.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { ImagePolicy } from '../src/api/v1alpha1/index.ts';
import { waitFor } from '../test/support/manual-clock.ts';
import { env as e2e, kubectl, newNamespace, setUp, tearDown } from '../test/e2e/support/env.ts';
import { RebuildEnv } from '../test/e2e/support/rebuild-env.ts';
import { medianRssMiB, shippedNodeOptions } from './process-memory.ts';
import { sleep } from '../src/runtime/clock.ts';

const { values } = parseArgs({
  options: {
    counts: { type: 'string', default: '50,500,2000' },
    'rest-s': { type: 'string', default: '60' },
    'heap-snapshot': { type: 'boolean', default: false },
    'node-options': { type: 'string' },
  },
});
const COUNTS = values.counts.split(',').map(Number);
const REST_S = Number(values['rest-s']);

interface Row {
  references: number;
  rssMiB: number;
  heapMiB: number;
  kibPerReference: number;
  startToReadyS: number;
  requestsPerMinute: number;
  connectionsPerMinute: number;
}

await setUp();
const env = await RebuildEnv.start();
const rows: Row[] = [];
let idleRss: number;
try {
  // The idle operator, as the baseline each N is measured against.
  const idle = await env.operator('op-bench-refs-idle', 'bench-refs-idle', ['--log-level', 'warn']);
  await sleep(5000);
  idleRss = await medianRssMiB(idle.pid!);
  await idle.stop();

  let pushed = 0;
  for (const n of COUNTS) {
    for (; pushed < n; pushed++) await env.pusher.pushImage(`refs/app${pushed}`, '1', { seed: `refs-${pushed}` });
    const ns = newNamespace('bench-refs');
    const docs = Array.from({ length: n }, (_, i) =>
      stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'ImagePolicy',
        metadata: { name: `p-${i}`, namespace: ns },
        spec: {
          image: `${env.registry.host}/refs/app${i}`,
          follow: { tag: '1' },
          interval: '1m',
          workloads: { names: [`none-${i}`] },
          verify: { registries: [env.registry.host] },
        },
      }),
    );
    for (let i = 0; i < docs.length; i += 500)
      kubectl(['apply', '--server-side', '-f', '-'], { input: docs.slice(i, i + 500).join('---\n') });

    const snapshot = values['heap-snapshot'] && n === Math.max(...COUNTS);
    const op = await env.operator(
      `op-bench-refs-${n}`,
      `bench-refs-${n}`,
      ['--leader-elect', 'false', '--log-level', 'warn'],
      0,
      {
        NODE_OPTIONS: [values['node-options'] ?? shippedNodeOptions(), snapshot ? '--heapsnapshot-signal=SIGUSR2' : '']
          .filter(Boolean)
          .join(' '),
      },
    );
    const t0 = Date.now();
    const readyCount = async (): Promise<number> =>
      (
        await e2e().admin.requestJson<{ items: ImagePolicy[] }>(
          'GET',
          `/apis/patchline.dev/v1alpha1/namespaces/${ns}/imagepolicies`,
        )
      ).items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    await waitFor(async () => (await readyCount()) === n, `${n} policies Ready`, 1_800_000, 1000);
    const startToReadyS = (Date.now() - t0) / 1000;

    // At rest: let the first cycle's follow-ups pass, then count a whole minute (or more).
    await sleep(15_000);
    const requests = () => op.metric('patchline_registry_requests_total', { registry: env.registry.host });
    const connections = () => op.metric('patchline_registry_connections_total', { registry: env.registry.host });
    const [r0, c0] = [await requests(), await connections()];
    await sleep(REST_S * 1000);
    const [r1, c1] = [await requests(), await connections()];
    const rss = await medianRssMiB(op.pid!);
    const heap = await op.metric('nodejs_heap_size_used_bytes');
    if (snapshot) {
      process.kill(op.pid!, 'SIGUSR2');
      await sleep(15_000); // writing a snapshot of a few hundred MiB takes seconds
    }
    await op.stop();
    kubectl(['delete', 'namespace', ns, '--wait=false']);
    const row: Row = {
      references: n,
      rssMiB: Math.round(rss),
      heapMiB: Math.round(heap / 1048576),
      kibPerReference: Math.round(((rss - idleRss) * 1024) / n),
      startToReadyS: Math.round(startToReadyS * 10) / 10,
      requestsPerMinute: Math.round(((r1 - r0) * 60) / REST_S),
      connectionsPerMinute: Math.round(((c1 - c0) * 60) / REST_S),
    };
    rows.push(row);
    console.log(
      `N ${n}: ${row.rssMiB} MiB RSS, ${row.heapMiB} MiB heap used (${row.kibPerReference} KiB per reference over the idle ${Math.round(idleRss)} MiB); start to all Ready ${row.startToReadyS} s; at rest ${row.requestsPerMinute} requests and ${row.connectionsPerMinute} new connections a minute`,
    );
  }
} finally {
  await env.stop();
  await tearDown();
}
console.log('| N | RSS | start to all ready | requests / min at rest | new connections / min at rest |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.references} | ${r.rssMiB} MiB | ${r.startToReadyS} s | ${r.requestsPerMinute} | ${r.connectionsPerMinute} |`,
  );
console.log(JSON.stringify({ bench: 'references', idleRssMiB: Math.round(idleRss), rows }));
