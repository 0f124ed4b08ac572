// GitOps mode at scale: N ImagePolicies (200 by default) writing to one repository through one
// GitWriteBack, each governing one Deployment that Flux (source- and kustomize-controller, real)
// applies from that repository, on the real test control plane, registry and git server.
//
// Each round publishes a new digest of every image at once (a base image patch rebuilding
// every service) and measures: the commits the round made (the goal is one), the time from a
// policy accepting its digest to the commit being pushed (p50, p99), the time from the push to
// Flux having applied it and every pod running the digest (with Flux's interval), the operator's
// memory, and the bytes Patchline fetched from the git server per update run (shallow fetches).
//
//   node bench/gitops.ts [--policies 200] [--rounds 3] [--flux-interval 30s]
//
// The operator runs as a separate process under its shipped RBAC, as in the end-to-end suite.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { GitWriteBack, ImagePolicy } from '../src/api/v1alpha1/index.ts';
import { waitFor } from '../test/support/manual-clock.ts';
import { Flux, fluxCrdFiles, fluxSync } from '../test/support/flux.ts';
import { GitHttpServer, GitRepos } from '../test/support/git-server.ts';
import { env as e2e, kubectl, newNamespace, setUp, tearDown } from '../test/e2e/support/env.ts';
import { RebuildEnv } from '../test/e2e/support/rebuild-env.ts';
import { rssMiB } from './process-memory.ts';

const { values } = parseArgs({
  options: {
    policies: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    'flux-interval': { type: 'string', default: '30s' },
  },
});
const POLICIES = Number(values.policies);
const ROUNDS = Number(values.rounds);
const FLUX_INTERVAL = values['flux-interval'];

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const percentile = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

await setUp();
const env = await RebuildEnv.start({}, { requestsPerMinute: 60_000, webhookRequestsPerSecond: 1_000 });
const repos = new GitRepos();
const git = await GitHttpServer.start({ users: { patchline: 'bench-pw', flux: 'flux-pw' } }, repos);
let flux: Flux | undefined;
try {
  const ns = newNamespace('bench-gitops');
  const name = (i: number): string => `svc-${i}`;
  const repository = (i: number): string => `${env.registry.host}/bench/${name(i)}`;
  const push = async (round: number): Promise<string[]> => {
    const digests: string[] = [];
    for (let i = 0; i < POLICIES; i += 20)
      digests.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(20, POLICIES - i) }, (_, k) =>
            env.pusher.pushImage(`bench/${name(i + k)}`, 'live', { seed: `r${round}-${i + k}` }).then((p) => p.digest),
          ),
        )),
      );
    return digests;
  };

  // The repository: one Deployment per service, its image marked for its policy.
  const v1 = await push(0);
  const deployment = (i: number): string =>
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      `metadata: {name: ${name(i)}}`,
      'spec:',
      '  replicas: 1',
      `  selector: {matchLabels: {app: ${name(i)}}}`,
      '  template:',
      `    metadata: {labels: {app: ${name(i)}}}`,
      '    spec:',
      '      containers:',
      '        - name: app',
      `          image: ${repository(i)}:live@${v1[i]!} # {"$imagepolicy": "${ns}:${name(i)}"}`,
      '',
    ].join('\n');
  const files: Record<string, string> = {
    'apps/kustomization.yaml': `namespace: ${ns}\nresources:\n${Array.from({ length: POLICIES }, (_, i) => `  - ${name(i)}.yaml`).join('\n')}\n`,
  };
  for (let i = 0; i < POLICIES; i++) files[`apps/${name(i)}.yaml`] = deployment(i);
  await repos.create('fleet', files);

  for (const file of fluxCrdFiles()) kubectl(['apply', '--server-side', '-f', file]);
  kubectl(['create', 'namespace', 'flux-system']);
  flux = await Flux.start(e2e().cp.kubeconfig);
  kubectl([
    'create',
    'secret',
    'generic',
    'flux-git',
    '-n',
    ns,
    '--from-literal=username=flux',
    '--from-literal=password=flux-pw',
  ]);
  kubectl([
    'create',
    'secret',
    'generic',
    'patchline-git',
    '-n',
    ns,
    '--from-literal=username=patchline',
    '--from-literal=password=bench-pw',
  ]);
  const apply = (docs: object[]): void => {
    for (let i = 0; i < docs.length; i += 200)
      kubectl(['apply', '-n', ns, '-f', '-'], {
        input: docs
          .slice(i, i + 200)
          .map((d) => stringify(d))
          .join('---\n'),
      });
  };
  apply(fluxSync(git.url('fleet'), 'flux-git', FLUX_INTERVAL));
  const setupStart = Date.now();
  const available = async (): Promise<number> =>
    (
      await e2e().admin.requestJson<{ items: { status?: { availableReplicas?: number } }[] }>(
        'GET',
        `/apis/apps/v1/namespaces/${ns}/deployments`,
      )
    ).items.filter((d) => d.status?.availableReplicas === 1).length;
  await waitFor(async () => (await available()) === POLICIES, `${POLICIES} Deployments applied by Flux`, 900_000, 1000);
  console.log(`set-up: Flux applied ${POLICIES} Deployments from git in ${seconds(Date.now() - setupStart)}`);

  // The heap limit the Deployment sets (manifests/deployment.yaml), so that memory is as in a cluster.
  const op = await env.operator(
    'op-bench-gitops',
    'bench-gitops',
    ['--leader-elect', 'false', '--log-level', 'warn'],
    0,
    {
      NODE_OPTIONS: '--max-old-space-size=384',
    },
  );
  const pid = op.pid!;
  let peakRss = rssMiB(pid);
  const sampleRss = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(pid))), 500);
  apply([
    {
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'GitWriteBack',
      metadata: { name: 'fleet' },
      spec: { url: git.url('fleet'), paths: ['apps'], secretRef: { name: 'patchline-git' } },
    },
    ...Array.from({ length: POLICIES }, (_, i) => ({
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name: name(i) },
      spec: {
        image: repository(i),
        follow: { tag: 'live' },
        workloads: { names: [name(i)] },
        verify: { registries: [env.registry.host] },
        rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'fleet' } }, progressDeadline: '30m' },
      },
    })),
  ]);
  const policies = async (): Promise<ImagePolicy[]> =>
    (
      await e2e().admin.requestJson<{ items: ImagePolicy[] }>(
        'GET',
        `/apis/patchline.dev/v1alpha1/namespaces/${ns}/imagepolicies`,
      )
    ).items;
  const upToDate = (p: ImagePolicy, digest: string): boolean =>
    p.status?.latest?.digest === digest && p.status.upToDate === '1/1';
  const t0 = Date.now();
  await waitFor(
    async () => (await policies()).every((p) => upToDate(p, v1[Number(p.metadata?.name?.slice(4))]!)),
    'every policy accepted and up to date',
    900_000,
    1000,
  );
  console.log(`operator start → ${POLICIES} policies up to date (git already said it): ${seconds(Date.now() - t0)}`);

  const rounds: { commits: number; toCommit: number[]; toApplied: number[]; total: number; bytesPerRun: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const commitsBefore = (await repos.log('fleet')).length;
    const requestsBefore = git.requests.length;
    const runsBefore = await op.metric('patchline_git_writeback_runs_total', {});
    const r0 = Date.now();
    const digests = await push(round);
    const accepted = new Map<string, number>();
    const committed = new Map<string, number>();
    const applied = new Map<string, number>();
    await waitFor(
      async () => {
        const now = Date.now();
        for (const p of await policies()) {
          const key = p.metadata?.name ?? '';
          const digest = digests[Number(key.slice(4))]!;
          if (p.status?.gitOps?.desired?.digest === digest && !accepted.has(key)) accepted.set(key, now);
          if (p.status?.gitOps?.desired?.digest === digest && p.status.gitOps.commit && !committed.has(key))
            committed.set(key, now);
          if (upToDate(p, digest) && !applied.has(key)) applied.set(key, now);
        }
        return applied.size === POLICIES;
      },
      `round ${round}: every pod on the new digest`,
      1_800_000,
      500,
    );
    const total = Date.now() - r0;
    const fetched = git.requests
      .slice(requestsBefore)
      .filter((r) => r.user === 'patchline' && r.url.includes('upload-pack'))
      .reduce((sum, r) => sum + (r.bytes ?? 0), 0);
    const runs = Math.max(1, (await op.metric('patchline_git_writeback_runs_total', {})) - runsBefore);
    const r = {
      commits: (await repos.log('fleet')).length - commitsBefore,
      toCommit: [...committed].map(([k, t]) => t - accepted.get(k)!),
      toApplied: [...applied].map(([k, t]) => t - committed.get(k)!),
      total,
      bytesPerRun: fetched / runs,
    };
    rounds.push(r);
    console.log(
      `round ${round}: ${POLICIES} new digests → ${r.commits} commit(s); accepted → pushed p50 ${seconds(percentile(r.toCommit, 50))}, p99 ${seconds(percentile(r.toCommit, 99))}; pushed → applied by Flux (interval ${FLUX_INTERVAL}) and running p50 ${seconds(percentile(r.toApplied, 50))}, p99 ${seconds(percentile(r.toApplied, 99))}; all done in ${seconds(total)}; ${(r.bytesPerRun / 1024).toFixed(1)} KiB fetched per update run (${runs} runs)`,
    );
  }
  clearInterval(sampleRss);
  const wb = await e2e().admin.requestJson<GitWriteBack>(
    'GET',
    `/apis/patchline.dev/v1alpha1/namespaces/${ns}/gitwritebacks/fleet`,
  );
  console.log(`  last commit: ${wb.status?.lastCommit?.shortSHA ?? '?'} "${wb.status?.lastCommit?.message ?? ''}"`);
  const heapUsedMiB = (await op.metric('nodejs_heap_size_used_bytes')) / 1024 / 1024;
  console.log(
    `  operator memory: ${rssMiB(pid).toFixed(0)} MiB RSS after the rounds, ${peakRss.toFixed(0)} MiB peak, ${heapUsedMiB.toFixed(0)} MiB of V8 heap in use (heap limit 384 MiB, as the Deployment sets)`,
  );
  const all = (f: (r: (typeof rounds)[number]) => number[]): number[] => rounds.flatMap(f);
  console.log(
    JSON.stringify({
      policies: POLICIES,
      rounds: ROUNDS,
      fluxIntervalS: Number.parseFloat(FLUX_INTERVAL) * (FLUX_INTERVAL.endsWith('m') ? 60 : 1),
      commitsPerRound: rounds.map((r) => r.commits),
      acceptedToPushedP50Ms: percentile(
        all((r) => r.toCommit),
        50,
      ),
      acceptedToPushedP99Ms: percentile(
        all((r) => r.toCommit),
        99,
      ),
      pushedToAppliedP50Ms: percentile(
        all((r) => r.toApplied),
        50,
      ),
      pushedToAppliedP99Ms: percentile(
        all((r) => r.toApplied),
        99,
      ),
      roundTotalMs: rounds.map((r) => r.total),
      fetchedKiBPerRun: Number((rounds.reduce((s, r) => s + r.bytesPerRun, 0) / rounds.length / 1024).toFixed(1)),
      rssMiB: Math.round(rssMiB(pid)),
      peakRssMiB: Math.round(peakRss),
      heapUsedMiB: Math.round(heapUsedMiB),
    }),
  );
  await op.stop();
} finally {
  await flux?.stop();
  await git.stop();
  repos.remove();
  await env.stop();
  await tearDown();
}
