// Fan-out under the global build limit: one base image shared by N RebuildTriggers (500 by
// default), a new base digest pushed, and the limit on builds in flight (20 by default).
// Prints how long until every build had been started and until every rebuild had landed,
// the most builds ever in flight (at the operator and at the build service), the queue, the
// status writes, and the operator's memory; then one line of JSON.
//
//   node bench/rebuild.ts [--triggers 500] [--limit 20] [--build-ms 2000]
//
// Runs on the real test control plane and the real registry, with the operator as a separate
// process under its shipped RBAC, exactly as the end-to-end suite does.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { waitFor } from '../test/support/manual-clock.ts';
import { kubectl, newNamespace, setUp, tearDown } from '../test/e2e/support/env.ts';
import { RebuildEnv, createBuildSecret } from '../test/e2e/support/rebuild-env.ts';
import { rssMiB } from './process-memory.ts';

const { values } = parseArgs({
  options: {
    triggers: { type: 'string', default: '500' },
    limit: { type: 'string', default: '20' },
    'build-ms': { type: 'string', default: '2000' },
  },
});
const N = Number(values.triggers);
const LIMIT = Number(values.limit);

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

await setUp();
// A local registry: the operator's default budget of 600 requests a minute per registry, and
// of 10 webhook requests a second, would make them, not the build queue, what is measured
// (the set-up pushes 500 images, each notified).
const env = await RebuildEnv.start(
  { buildMs: Number(values['build-ms']) },
  { requestsPerMinute: 60_000, webhookRequestsPerSecond: 1_000 },
);
try {
  const ns = newNamespace('bench-rebuild');
  createBuildSecret(ns);
  await env.pusher.pushImage('base/shared', '1', { seed: 'bench-b1' });
  // The images to rebuild exist already, as they would.
  for (let i = 0; i < N; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, N - i) }, (_, j) =>
        env.pusher.pushImage(`team/app-${i + j}`, '1', { seed: `bench-a${i + j}` }),
      ),
    );
  }
  const docs = Array.from({ length: N }, (_, i) =>
    stringify({
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'RebuildTrigger',
      metadata: { name: `app-${i}`, namespace: ns },
      spec: {
        baseImages: [{ image: env.image('base/shared', '1') }],
        target: { image: env.image(`team/app-${i}`, '1') },
        build: {
          webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
          credentialsRef: { name: 'build-creds' },
        },
        settle: '0s',
      },
    }),
  );
  kubectl(['apply', '--server-side', '-f', '-'], { input: docs.join('---\n') });

  const op = await env.operator('op-bench', 'bench-rebuild', ['--max-builds', String(LIMIT), '--log-level', 'warn']);
  const pid = op.pid!;
  let peakRss = rssMiB(pid);
  const phases = (): Map<string, number> => {
    const out = kubectl(['get', 'rbt', '-n', ns, '-o', 'jsonpath={range .items[*]}{.status.phase}{"\\n"}{end}']).stdout;
    const m = new Map<string, number>();
    for (const p of out.split('\n').filter(Boolean)) m.set(p, (m.get(p) ?? 0) + 1);
    return m;
  };
  const learnedAt = Date.now();
  await waitFor(() => phases().get('Idle') === N, `${N} triggers idle`, 600_000, 500);
  console.log(`${N} triggers following the base: ${seconds(Date.now() - learnedAt)} from operator start`);
  const idleRss = rssMiB(pid);

  // The change: one push, N rebuilds under a limit of LIMIT.
  const base2 = await env.pusher.pushImage('base/shared', '1', { seed: 'bench-b2' });
  const t0 = Date.now();
  let peakInFlight = 0;
  let peakQueued = 0;
  let peakAtService = 0;
  const sample = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(pid));
    const active = [...env.builds.builds.values()].filter((b) => b.status === 'queued' || b.status === 'running');
    peakAtService = Math.max(peakAtService, active.length);
    void op.metric('patchline_builds_in_flight').then((v) => (peakInFlight = Math.max(peakInFlight, v)));
    void op.metric('patchline_builds_queued').then((v) => (peakQueued = Math.max(peakQueued, v)));
  }, 250);
  await waitFor(() => env.builds.builds.size === N, `${N} builds started`, 1_800_000, 200);
  const starts = [...env.builds.builds.values()].map((b) => b.startedAt - t0).sort((a, b) => a - b);
  const allStarted = starts.at(-1)!;
  await waitFor(() => phases().get('Landed') === N, `${N} rebuilds landed`, 1_800_000, 1000);
  const allLanded = Date.now() - t0;
  clearInterval(sample);

  const perBase = env.builds.buildsPerBaseDigest().get(base2.digest) ?? 0;
  const writes = await op.metric('patchline_status_writes_total', { kind: 'RebuildTrigger', result: 'written' });
  const conflicts = await op.metric('patchline_status_writes_total', { kind: 'RebuildTrigger', result: 'conflict' });
  console.log(`one base, ${N} triggers, limit ${LIMIT} in flight, builds of ${values['build-ms']} ms:`);
  console.log(
    `  every build started after ${seconds(allStarted)} (first ${seconds(starts[0]!)}, p50 ${seconds(percentile(starts, 50))}, p90 ${seconds(percentile(starts, 90))})`,
  );
  console.log(`  every rebuild landed after ${seconds(allLanded)}`);
  console.log(
    `  builds in flight at most: ${peakInFlight} (operator gauge), ${peakAtService} (at the build service); queued at most: ${peakQueued}`,
  );
  console.log(`  builds for the new base digest: ${perBase} (start requests ${env.builds.posts.length})`);
  console.log(`  status writes: ${writes} (${(writes / N).toFixed(1)} per trigger), conflicts ${conflicts}`);
  console.log(
    `  operator memory: ${idleRss.toFixed(0)} MiB RSS idle with ${N} triggers, ${peakRss.toFixed(0)} MiB peak during the fan-out`,
  );
  await op.stop();
  console.log(
    JSON.stringify({
      bench: 'rebuild',
      triggers: N,
      limit: LIMIT,
      buildMs: Number(values['build-ms']),
      allStartedS: allStarted / 1000,
      startedP50S: percentile(starts, 50) / 1000,
      startedP90S: percentile(starts, 90) / 1000,
      allLandedS: allLanded / 1000,
      peakInFlight,
      peakAtService,
      peakQueued,
      buildsForNewBase: perBase,
      startRequests: env.builds.posts.length,
      statusWrites: writes,
      statusConflicts: conflicts,
      idleRssMiB: Math.round(idleRss),
      peakRssMiB: Math.round(peakRss),
    }),
  );
} finally {
  await env.stop();
  await tearDown();
}
