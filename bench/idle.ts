// The operator at rest with nothing to do, and what each module costs it at start.
//
// 1. Module costs: every runtime dependency (and the operator's own entry module) imported
//    alone into a fresh Node process; RSS and heap growth and import time, less the cost of
//    importing a built-in module (the ESM loader's own warm-up).
// 2. The operator itself — the compiled dist/main.js as the container runs it, under its
//    shipped RBAC, on the real test control plane, with a config file naming a registry and a
//    webhook receiver (as a production install has) — with no resources at all: RSS and heap
//    once settled (median of 10 samples, one a second, after 10 s of rest).
//
//   node bench/idle.ts [--settle-s 10]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { setUp, tearDown } from '../test/e2e/support/env.ts';
import { RebuildEnv } from '../test/e2e/support/rebuild-env.ts';
import { rssMiB, shippedNodeOptions } from './process-memory.ts';

const { values } = parseArgs({
  options: { 'settle-s': { type: 'string', default: '10' }, 'node-options': { type: 'string' } },
});
const SETTLE_S = Number(values['settle-s']);
// As shipped: the NODE_OPTIONS of the install manifests, unless told otherwise.
const NODE_OPTIONS = values['node-options'] ?? shippedNodeOptions();

const MODULES = [
  'winston',
  'prom-client',
  'undici',
  'yaml',
  'ajv',
  'cron',
  'semver',
  'node-forge',
  '@sigstore/verify',
  '@sigstore/tuf',
  '@kubernetes/client-node',
  '@azure/identity',
  '@aws-sdk/client-ecr',
  '@aws-sdk/client-codebuild',
  'google-auth-library',
];

interface ImportCost {
  module: string;
  rssMiB: number;
  heapMiB: number;
  ms: number;
}

const PROBE = `
const mod = process.argv[1];
globalThis.gc(); const before = process.memoryUsage();
const t = performance.now();
await import(mod);
const ms = performance.now() - t;
globalThis.gc(); const after = process.memoryUsage();
console.log(JSON.stringify({ rss: after.rss - before.rss, heap: after.heapUsed - before.heapUsed, ms }));`;

function probe(module: string): { rss: number; heap: number; ms: number } {
  // Three runs, the median of each figure: RSS growth is noisy by a few hundred KiB.
  const runs = [0, 1, 2].map(
    () =>
      JSON.parse(
        execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', PROBE, module], {
          cwd: new URL('..', import.meta.url).pathname,
          encoding: 'utf8',
        }),
      ) as { rss: number; heap: number; ms: number },
  );
  const median = (k: 'rss' | 'heap' | 'ms'): number => runs.map((r) => r[k]).sort((a, b) => a - b)[1]!;
  return { rss: median('rss'), heap: median('heap'), ms: median('ms') };
}

const MiB = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

function moduleCosts(): ImportCost[] {
  const base = probe('node:path');
  return MODULES.map((module) => {
    const p = probe(module);
    return { module, rssMiB: MiB(p.rss - base.rss), heapMiB: MiB(p.heap - base.heap), ms: Math.round(p.ms) };
  });
}

const costs = moduleCosts();
console.log('module costs at import (alone, beyond a built-in import):');
for (const c of costs)
  console.log(
    `  ${c.module.padEnd(28)} ${String(c.rssMiB).padStart(6)} MiB RSS ${String(c.heapMiB).padStart(5)} MiB heap ${String(c.ms).padStart(5)} ms`,
  );

await setUp();
const env = await RebuildEnv.start();
let idle: { rssMiB: number; heapMiB: number; startMs: number };
try {
  const t0 = Date.now();
  const op = await env.operator('op-bench-idle', 'bench-idle', ['--log-level', 'warn'], 0, { NODE_OPTIONS });
  const startMs = Date.now() - t0;
  await op.waitUntil(async () => (await op.metric('leader_election_master_status')) === 1, 'leader', 60_000);
  await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    samples.push(rssMiB(op.pid!));
    await new Promise((r) => setTimeout(r, 1000));
  }
  samples.sort((a, b) => a - b);
  const heap = await op.metric('nodejs_heap_size_used_bytes');
  const heapTotal = await op.metric('nodejs_heap_size_total_bytes');
  const external = await op.metric('nodejs_external_memory_bytes');
  const spaces = (await op.get('/metrics')).body
    .split('\n')
    .filter((l) => l.startsWith('nodejs_heap_space_size_total_bytes'))
    .map((l) => l.replace(/^.*space="(\w+)"\} (\d+)$/, (_, s: string, v: string) => `${s} ${MiB(Number(v))}`));
  console.log(
    `heap committed ${MiB(heapTotal)} MiB (by space, MiB: ${spaces.join(', ')}); external ${MiB(external)} MiB`,
  );
  idle = { rssMiB: Math.round(samples[5]!), heapMiB: MiB(heap), startMs };
  await op.stop();
} finally {
  await env.stop();
  await tearDown();
}
console.log(
  `operator with no resources: ${idle.rssMiB} MiB RSS, ${idle.heapMiB} MiB heap used (settled ${SETTLE_S} s, NODE_OPTIONS ${NODE_OPTIONS}); process start to ready ${idle.startMs} ms`,
);
console.log(
  JSON.stringify({
    bench: 'idle',
    idleRssMiB: idle.rssMiB,
    idleHeapMiB: idle.heapMiB,
    startToReadyMs: idle.startMs,
    modules: Object.fromEntries(costs.map((c) => [c.module, c.rssMiB])),
  }),
);
