// Requests to the forge per write-back run in pull request mode, by kind of run, over a
// stream of changes: the first change (find, create, labels, reviewers), runs with nothing new
// (one read of the open request), a newer digest for an open request (read, update), a merge
// (read), a close and a change proposed again, and a run that died between the push and its
// status write (the request found again, never created twice). Real git (git http-backend on
// 127.0.0.1) and a GitHub-shaped forge; the reconciler runs in this process with its
// Kubernetes side in memory. Also: the duration of runs (p50/p99) and a GitHub App's token
// requests.
//
//   npm run bench:forge            (CHANGES=40 by default)
import { generateKeyPairSync } from 'node:crypto';
import type { GitWriteBack, ImagePolicy } from '../src/api/v1alpha1/index.ts';
import { FakeGithub } from '../test/support/fake-github.ts';
import { GitHttpServer, GitRepos } from '../test/support/git-server.ts';
import { WriteBackHarness } from '../test/support/writeback-harness.ts';

const CHANGES = Number(process.env.CHANGES ?? 40);
const IMAGE = 'registry.example/shop/web';
const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : 0;
};

function policy(d: string): ImagePolicy {
  return {
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      image: IMAGE,
      follow: { tag: '1.4' },
      workloads: {},
      rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'fleet' } } },
    },
    status: {
      latest: {
        tag: '1.4',
        digest: d,
        verified: true,
        checks: [{ name: 'registry', passed: true, message: 'approved' }],
      },
      gitOps: { desired: { digest: d, tag: '1.4', reason: 'Rollout', since: '2026-12-06T00:00:00Z' } },
      workloads: [{ kind: 'Deployment', name: 'web', container: 'app', runningDigest: digest(1) }],
    },
  };
}

const repos = new GitRepos();
const tokens = ['ghp_bench'];
const appKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const http = await GitHttpServer.start({ tokens }, repos);
const github = await FakeGithub.start({
  repos,
  tokens,
  app: { id: '1', installationId: 9, publicKey: appKeys.publicKey },
});
const byKind = new Map<string, number[]>();
const durations: number[] = [];
const harnesses: WriteBackHarness[] = [];

async function harness(name: string, secret: Record<string, string>): Promise<WriteBackHarness> {
  await repos.create(`acme/${name}`, {
    'apps/web.yaml': `image: ${IMAGE}:1.4@${digest(1)} # {"$imagepolicy": "shop:web"}\n`,
  });
  const wb: GitWriteBack = {
    metadata: { name: 'fleet', namespace: 'shop', generation: 1 },
    spec: {
      url: http.url(`acme/${name}`),
      push: { branch: 'patchline/updates' },
      paths: ['apps'],
      secretRef: { name: 'git' },
      batchWindow: '0s',
      pullRequest: { provider: 'github', apiURL: github.api, labels: ['patchline'], reviewers: ['alice'] },
    },
  };
  const h = new WriteBackHarness(wb);
  h.secrets.set('git', secret);
  harnesses.push(h);
  return h;
}

/** One run, its forge requests counted under `kind`. */
async function run(h: WriteBackHarness, kind: string, options: { crashAtCommit?: number } = {}): Promise<void> {
  const before = github.requests.length;
  const started = performance.now();
  await h.run(options);
  durations.push(performance.now() - started);
  const made = github.requests.slice(before).filter((r) => !r.path.startsWith('/app/')).length;
  byKind.set(kind, [...(byKind.get(kind) ?? []), made]);
}

try {
  const h = await harness('bench', { username: 'git', password: 'ghp_bench' });
  let n = 2;
  for (let change = 0; change < CHANGES; change++) {
    h.policies = [policy(digest(n++))];
    const open = github.open('acme', 'bench')[0];
    if (!open && change > 0 && change % 8 === 0) {
      // Dies after the push and the create, before the status write: found again, not created twice.
      const before = github.pulls.length;
      await run(h, 'died after the push and the create', { crashAtCommit: 2 });
      await run(h, 'recovery: change found by its trailer');
      await run(h, 'recovery: request found by its head branch');
      if (github.pulls.length !== before + 1) throw new Error('a second request was created');
    } else {
      await run(h, open ? 'newer digest, request open' : 'first change, no request');
    }
    await run(h, 'nothing new, request open');
    if (change % 4 === 1) {
      await github.merge(github.open('acme', 'bench')[0]!.number);
      await run(h, 'merged');
    } else if (change % 4 === 3) {
      github.close(github.open('acme', 'bench')[0]!.number);
      await run(h, 'closed (digest declined)');
    }
  }
  // A GitHub App: one installation token per hour of runs, whatever their number.
  const app = await harness('app', {
    githubAppID: '1',
    githubAppInstallationID: '9',
    githubAppPrivateKey: appKeys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  });
  const tokenBefore = github.requests.filter((r) => r.path.startsWith('/app/')).length;
  for (let i = 0; i < 10; i++) {
    app.policies = [policy(digest(1000 + i))];
    await run(app, 'GitHub App runs');
  }
  const tokenRequests = github.requests.filter((r) => r.path.startsWith('/app/')).length - tokenBefore;

  const summary: Record<string, { runs: number; requestsPerRun: number; max: number }> = {};
  for (const [kind, counts] of byKind) {
    const total = counts.reduce((a, b) => a + b, 0);
    summary[kind] = {
      runs: counts.length,
      requestsPerRun: Number((total / counts.length).toFixed(2)),
      max: Math.max(...counts),
    };
    console.log(
      `${kind.padEnd(46)} ${String(counts.length).padStart(4)} runs  ${summary[kind].requestsPerRun.toFixed(2).padStart(5)} requests/run (max ${summary[kind].max})`,
    );
  }
  const all = [...byKind.values()].flat();
  const pulls = github.pulls.filter((p) => p.repo === 'bench');
  console.log(
    `${all.length} runs, ${all.reduce((a, b) => a + b, 0)} forge requests; ${pulls.length} pull requests for ${CHANGES} changes; run duration p50 ${percentile(durations, 50).toFixed(0)} ms, p99 ${percentile(durations, 99).toFixed(0)} ms; GitHub App: ${tokenRequests} token request(s) for 10 runs`,
  );
  console.log(
    JSON.stringify({
      bench: 'forge',
      changes: CHANGES,
      runs: all.length,
      forgeRequests: all.reduce((a, b) => a + b, 0),
      firstChangeRequests: summary['first change, no request']?.requestsPerRun ?? 0,
      steadyRequests: summary['nothing new, request open']?.requestsPerRun ?? 0,
      newerDigestRequests: summary['newer digest, request open']?.requestsPerRun ?? 0,
      mergedRequests: summary.merged?.requestsPerRun ?? 0,
      closedRequests: summary['closed (digest declined)']?.requestsPerRun ?? 0,
      recoveryRequests: summary['recovery: request found by its head branch']?.requestsPerRun ?? 0,
      pullRequests: pulls.length,
      runP50Ms: Math.round(percentile(durations, 50)),
      runP99Ms: Math.round(percentile(durations, 99)),
      appTokenRequestsPer10Runs: tokenRequests,
    }),
  );
} finally {
  for (const h of harnesses) h.remove();
  await github.stop();
  await http.stop();
  repos.remove();
}
