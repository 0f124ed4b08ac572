// GitOps mode end to end, with every part real: the test control plane, a registry that
// notifies the operator, the build service, a git server (smart HTTP through git
// http-backend, and Debian's sshd), Flux's source-controller and kustomize-controller
// applying the repository to the cluster, and the operator as its ServiceAccount.
// Patchline writes accepted digests to git, Flux applies them, Patchline follows the pods.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import type { GitWriteBack, GitWriteBackStatus } from '../../src/api/v1alpha1/index.ts';
import { Flux, fluxCrdFiles, fluxSync } from '../support/flux.ts';
import { GitHttpServer, GitRepos, GitSshServer } from '../support/git-server.ts';
import { env, kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy, runningPods, specImage, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv, applyTrigger, createBuildSecret, eventReasons, triggerStatus } from './support/rebuild-env.ts';

const GIT_USER = 'patchline';
const GIT_PASSWORD = 'e2e-git-password';

function deploymentYaml(
  name: string,
  image: string,
  marker: string,
  podAnnotations: Record<string, string> = {},
): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: ${name}`,
    '  labels:',
    `    app: ${name}`,
    'spec:',
    '  replicas: 2',
    '  selector:',
    '    matchLabels:',
    `      app: ${name}`,
    '  template:',
    '    metadata:',
    '      labels:',
    `        app: ${name}`,
    ...(Object.keys(podAnnotations).length > 0
      ? ['      annotations:', ...Object.entries(podAnnotations).map(([k, v]) => `        ${k}: "${v}"`)]
      : []),
    '    spec:',
    '      containers:',
    '        # the application; Patchline keeps it on the newest accepted digest',
    `        - name: app`,
    `          image: ${image} # ${marker}`,
    '',
  ].join('\n');
}

function writeBackStatus(ns: string, name: string): GitWriteBackStatus {
  const out = kubectl(['get', 'gitwriteback', name, '-n', ns, '-o', 'json'], { allowFailure: true }).stdout;
  return out ? ((JSON.parse(out) as GitWriteBack).status ?? {}) : {};
}

describe('GitOps mode: Patchline writes to git, Flux applies, Patchline follows the pods', function () {
  this.timeout(300_000);
  let e: RebuildEnv;
  let repos: GitRepos;
  let http: GitHttpServer;
  let ssh: GitSshServer;
  let flux: Flux;
  let operator: Operator;

  before(async () => {
    e = await RebuildEnv.start();
    repos = new GitRepos();
    http = await GitHttpServer.start({ users: { [GIT_USER]: GIT_PASSWORD, flux: 'flux-password' } }, repos);
    ssh = await GitSshServer.start(repos);
    for (const file of fluxCrdFiles()) kubectl(['apply', '--server-side', '-f', file]);
    kubectl(['create', 'namespace', 'flux-system']);
    flux = await Flux.start(env().cp.kubeconfig);
    operator = await e.operator('e2e-gitops', 'gitops-leader');
  });
  after(async () => {
    await operator?.stop();
    await flux?.stop();
    await ssh?.stop();
    await http?.stop();
    await e?.stop();
    repos?.remove();
  });

  /** A repository Flux applies to `ns`, and the Secrets both sides read it with. */
  async function fleet(ns: string, repo: string, files: Record<string, string>): Promise<void> {
    await repos.create(repo, {
      'apps/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${ns}\nresources:\n${Object.keys(
        files,
      )
        .map((f) => `  - ${f}`)
        .join('\n')}\n`,
      ...Object.fromEntries(Object.entries(files).map(([f, text]) => [`apps/${f}`, text])),
    });
    kubectl([
      'create',
      'secret',
      'generic',
      'flux-git',
      '-n',
      ns,
      '--from-literal=username=flux',
      '--from-literal=password=flux-password',
    ]);
    kubectl([
      'create',
      'secret',
      'generic',
      'patchline-git',
      '-n',
      ns,
      `--from-literal=username=${GIT_USER}`,
      `--from-literal=password=${GIT_PASSWORD}`,
    ]);
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: fluxSync(http.url(repo), 'flux-git', '5s')
        .map((o) => stringify(o))
        .join('---\n'),
    });
  }

  function applyWriteBack(ns: string, name: string, spec: Record<string, unknown>): void {
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({ apiVersion: 'patchline.dev/v1alpha1', kind: 'GitWriteBack', metadata: { name }, spec }),
    });
  }

  /** An ImagePolicy in GitOps mode, writing through `writeBack`. */
  function applyGitOpsPolicy(
    ns: string,
    name: string,
    repository: string,
    tag: string,
    rollout: Record<string, unknown>,
    verify: Record<string, unknown> = { registries: [e.registry.host] },
  ): void {
    applyPolicy(ns, name, {
      image: repository,
      follow: { tag },
      workloads: { names: [name] },
      verify,
      rollout: { mode: 'GitOps', ...rollout },
    });
  }

  async function podsRun(ns: string, app: string, image: string): Promise<boolean> {
    const pods = await runningPods(ns, app);
    return (
      pods.length === 2 &&
      pods.every((p) => p.status?.containerStatuses?.find((c) => c.name === 'app')?.imageID === image)
    );
  }

  it('the whole loop: base patched → rebuilt → accepted → committed → applied by Flux → every pod runs it → RolledOut with the commit', async () => {
    const ns = newNamespace('e2e-gitops');
    createBuildSecret(ns);
    await e.pusher.pushImage('base/gitops', '1', { seed: `${ns}-b1` });
    const v1 = await e.pusher.pushImage('shop/gitops-web', '1.0', { seed: `${ns}-a1` });
    const repository = `${e.registry.host}/shop/gitops-web`;
    await fleet(ns, `fleet-${ns}`, {
      'web.yaml': deploymentYaml('web', `${repository}:1.0@${v1.digest}`, `{"$imagepolicy": "${ns}:web"}`),
    });
    await operator.waitUntil(
      () => podsRun(ns, 'web', `${repository}@${v1.digest}`),
      'Flux applied the first commit',
      90_000,
    );

    applyTrigger(ns, 'web', {
      baseImages: [{ image: e.image('base/gitops', '1') }],
      target: { image: e.image('shop/gitops-web', '1.0') },
      build: {
        webhook: { url: `${e.builds.url}/builds`, statusURL: `${e.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
      },
      settle: '0s',
    });
    applyWriteBack(ns, 'fleet', {
      url: http.url(`fleet-${ns}`),
      branch: 'main',
      paths: ['apps'],
      secretRef: { name: 'patchline-git' },
      batchWindow: '1s',
    });
    applyGitOpsPolicy(
      ns,
      'web',
      repository,
      '1.0',
      { gitOps: { writeBackRef: { name: 'fleet' } }, progressDeadline: '2m' },
      { registries: [e.registry.host], provenance: { requireBase: true } },
    );
    await operator.waitUntil(() => triggerStatus(ns, 'web').bases?.[0]?.digest !== undefined, 'base learned');
    const before = (await repos.log(`fleet-${ns}`)).length;

    // The base is patched: rebuilt, verified against the new base, written to git, applied by Flux.
    const base2 = await e.pusher.pushImage('base/gitops', '1', { seed: `${ns}-b2` });
    const s = await waitForPolicy(operator, ns, 'web', 'the rebuilt digest runs on every pod', (x) => {
      const w = workload(x, 'Deployment', 'web');
      return (
        x.latest?.verified === true &&
        x.latest.digest === triggerStatus(ns, 'web').landed?.digest &&
        w?.state === 'UpToDate' &&
        !!w.commit
      );
    });
    const landed = triggerStatus(ns, 'web').landed!;
    assert.equal(landed.baseDigest, base2.digest);
    assert.ok(await podsRun(ns, 'web', `${repository}@${landed.digest}`));

    const log = await repos.log(`fleet-${ns}`);
    assert.equal(log.length, before + 1, 'one commit');
    const commit = log[0]!;
    assert.equal(commit.author, 'Patchline <patchline@users.noreply.patchline.dev>');
    assert.match(commit.subject, /^Update image: web sha256:[0-9a-f]{12} → 1\.0@sha256:[0-9a-f]{12}$/);
    assert.match(commit.body, /passed: registry: .*provenance: /);
    assert.match(commit.body, new RegExp(`rebuilt: RebuildTrigger ${ns}/web: base `));
    assert.match(commit.body, /Patchline-Change: [0-9a-f]{20}$/);
    assert.equal(
      await repos.file(`fleet-${ns}`, 'apps/web.yaml'),
      deploymentYaml('web', `${repository}:1.0@${landed.digest}`, `{"$imagepolicy": "${ns}:web"}`),
      'only the image value changed; the comments stayed',
    );
    assert.equal(workload(s, 'Deployment', 'web')?.commit, commit.sha);
    assert.equal(s.gitOps?.commit, commit.sha);
    assert.equal(writeBackStatus(ns, 'fleet').lastCommit?.sha, commit.sha);
    // Flux applied it; Patchline never wrote to the Deployment.
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repository}:1.0@${landed.digest}`);
    const managers = kubectl([
      'get',
      'deployment',
      'web',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.managedFields[*].manager}',
    ]).stdout;
    assert.doesNotMatch(managers, /patchline/);
    assert.ok(eventReasons(ns, 'web').includes('RolledOut'));
    assert.ok(eventReasons(ns, 'fleet').includes('Committed'));
    // Time to patch gains its GitOps stages: committed, then applied.
    assert.ok((await operator.metric('patchline_time_to_committed_seconds_count')) >= 1);
    assert.ok((await operator.metric('patchline_time_to_applied_seconds_count')) >= 1);
  });

  it('a digest that never gets ready is reverted in git; Flux applies the revert; the pods run the previous digest again', async () => {
    const ns = newNamespace('e2e-gitops-revert');
    const good = await e.pusher.pushImage('shop/gitops-revert', '2.0', { seed: `${ns}-good` });
    const repository = `${e.registry.host}/shop/gitops-revert`;
    // The bad image is known before it is published under the followed tag (same content, same digest).
    const badImage = { seed: `${ns}-bad`, created: '2026-12-01T00:00:00Z' };
    const bad = await e.pusher.pushImage('shop/gitops-revert', 'staging', badImage);
    await fleet(ns, `fleet-${ns}`, {
      'api.yaml': deploymentYaml('api', `${repository}:2.0@${good.digest}`, `{"$patchline": "${ns}:api"}`, {
        'testcp.patchline.dev/never-ready-images': bad.digest.slice(7, 30),
      }),
    });
    await operator.waitUntil(
      () => podsRun(ns, 'api', `${repository}@${good.digest}`),
      'Flux applied the first commit',
      90_000,
    );
    applyWriteBack(ns, 'fleet', {
      url: http.url(`fleet-${ns}`),
      paths: ['apps'],
      secretRef: { name: 'patchline-git' },
      batchWindow: '0s',
    });
    applyGitOpsPolicy(ns, 'api', repository, '2.0', {
      gitOps: { writeBackRef: { name: 'fleet' } },
      progressDeadline: '20s',
    });
    await waitForPolicy(
      operator,
      ns,
      'api',
      'the good digest accepted and running',
      (x) => workload(x, 'Deployment', 'api')?.state === 'UpToDate',
    );

    // A bad build is published under the followed tag.
    assert.equal((await e.pusher.pushImage('shop/gitops-revert', '2.0', badImage)).digest, bad.digest);
    const s = await waitForPolicy(
      operator,
      ns,
      'api',
      'rolled back in git and running the good digest again',
      (x) => x.failedDigest === bad.digest && x.gitOps?.desired?.reason === 'Revert' && !!x.gitOps.commit,
    );
    await operator.waitUntil(
      () => podsRun(ns, 'api', `${repository}@${good.digest}`),
      'the pods run the good digest again',
      90_000,
    );
    const subjects = (await repos.log(`fleet-${ns}`)).map((c) => c.subject);
    assert.match(subjects[0] ?? '', /^Update image: revert api sha256:[0-9a-f]{12} → 2\.0@sha256:/);
    assert.match(subjects[1] ?? '', /^Update image: api sha256:[0-9a-f]{12} → 2\.0@sha256:/);
    assert.match(await repos.file(`fleet-${ns}`, 'apps/api.yaml'), new RegExp(`${repository}:2\\.0@${good.digest} #`));
    assert.equal(s.conditions?.find((c) => c.type === 'Ready')?.reason, 'RolloutFailed');
    assert.ok(eventReasons(ns, 'api').includes('RolledBack'));
    const managers = kubectl([
      'get',
      'deployment',
      'api',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.managedFields[*].manager}',
    ]).stdout;
    assert.doesNotMatch(managers, /patchline/, 'a revert is a commit, never a pin');
  });

  it('writes over SSH, and re-applies its change when another commit landed first (non-fast-forward)', async () => {
    const ns = newNamespace('e2e-gitops-ssh');
    const v1 = await e.pusher.pushImage('shop/gitops-ssh', '3.0', { seed: `${ns}-1` });
    const repository = `${e.registry.host}/shop/gitops-ssh`;
    await fleet(ns, `fleet-${ns}`, {
      'cart.yaml': deploymentYaml('cart', `${repository}@${v1.digest}`, `{"$imagepolicy": "${ns}:cart"}`),
    });
    await operator.waitUntil(
      () => podsRun(ns, 'cart', `${repository}@${v1.digest}`),
      'Flux applied the first commit',
      90_000,
    );
    kubectl([
      'create',
      'secret',
      'generic',
      'patchline-ssh',
      '-n',
      ns,
      `--from-literal=identity=${ssh.access.identity}`,
      `--from-literal=known_hosts=${ssh.access.knownHosts}`,
    ]);
    applyWriteBack(ns, 'fleet-ssh', {
      url: ssh.url(`fleet-${ns}`),
      paths: ['apps'],
      secretRef: { name: 'patchline-ssh' },
      batchWindow: '0s',
    });
    applyGitOpsPolicy(ns, 'cart', repository, '3.0', {
      gitOps: { writeBackRef: { name: 'fleet-ssh' }, format: 'Digest' },
    });
    await waitForPolicy(
      operator,
      ns,
      'cart',
      'v1 running',
      (x) => workload(x, 'Deployment', 'cart')?.state === 'UpToDate',
    );

    // Over SSH this time; and someone else's commit lands on main while Patchline pushes.
    const before = (await repos.log(`fleet-${ns}`)).length;
    await repos.raceNextPush(`fleet-${ns}`, { 'apps/NOTES.md': 'a human was here\n' }, 'a human commit');
    const v2 = await e.pusher.pushImage('shop/gitops-ssh', '3.0', { seed: `${ns}-2` });
    await waitForPolicy(
      operator,
      ns,
      'cart',
      'v2 committed and running',
      (x) => workload(x, 'Deployment', 'cart')?.state === 'UpToDate' && x.latest?.digest === v2.digest,
    );
    const log = await repos.log(`fleet-${ns}`);
    assert.equal(log.length, before + 2, 'the human commit and one Patchline commit');
    assert.deepEqual(
      log.slice(0, 2).map((c) => c.subject.split(':')[0]),
      ['Update image', 'a human commit'],
      'Patchline re-applied its change on top of the commit that landed first',
    );
    assert.match(await repos.file(`fleet-${ns}`, 'apps/cart.yaml'), new RegExp(`image: ${repository}@${v2.digest} #`));
    assert.equal(await repos.file(`fleet-${ns}`, 'apps/NOTES.md'), 'a human was here\n');
  });

  it('kill -9 at random moments, at least 20 times, during a stream of digests: one commit per change, none lost', async () => {
    const ns = newNamespace('e2e-gitops-chaos');
    const repo = `fleet-${ns}`;
    const repository = `${e.registry.host}/shop/gitops-chaos`;
    const first = await e.pusher.pushImage('shop/gitops-chaos', 'live', { seed: `${ns}-0` });
    await repos.create(repo, {
      'apps/values.yaml': `image:\n  repository: ${repository} # {"$imagepolicy": "${ns}:chaos:name"}\n  digest: ${first.digest} # {"$imagepolicy": "${ns}:chaos:digest"}\n`,
    });
    kubectl([
      'create',
      'secret',
      'generic',
      'patchline-git',
      '-n',
      ns,
      `--from-literal=username=${GIT_USER}`,
      `--from-literal=password=${GIT_PASSWORD}`,
    ]);
    applyWriteBack(ns, 'fleet', {
      url: http.url(repo),
      paths: ['apps'],
      secretRef: { name: 'patchline-git' },
      batchWindow: '0s',
    });
    applyGitOpsPolicy(ns, 'chaos', repository, 'live', { gitOps: { writeBackRef: { name: 'fleet' } } });
    await operator.stop();
    // This operator watches only the namespace of the test: its many restarts are about exactly
    // once, not about re-reading what earlier tests left in the cluster.
    const chaosOperator = (): Promise<Operator> =>
      e.operator('e2e-gitops-chaos', 'gitops-chaos-leader', ['--watch-namespaces', ns]);
    let op = await chaosOperator();
    const inGit = async (digest: string): Promise<boolean> =>
      (await repos.file(repo, 'apps/values.yaml')).includes(`digest: ${digest} #`);
    let kills = 0;
    let killsOnPush = 0;
    let stop = false;
    let onPush: (() => void) | undefined;
    http.onPush = () => onPush?.();
    // Killer: kill -9 at a random moment, or — one time in three — just as a push arrives, so
    // that the commit lands while the status that records it is never written.
    const killer = (async () => {
      while (!stop) {
        const atPush = Math.random() < 1 / 3;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200 + Math.floor(Math.random() * 2_000));
          onPush = atPush
            ? () => {
                clearTimeout(timer);
                killsOnPush++;
                resolve();
              }
            : undefined;
        });
        onPush = undefined;
        if (stop) break;
        await op.kill();
        kills++;
        op = await chaosOperator();
      }
    })();
    const pushed = [first.digest];
    try {
      await op.waitUntil(() => inGit(first.digest), 'the first digest in git');
      // Rounds go on until the killer has struck 20 times (a round is quick when nothing is
      // killed: a push is in git within a fraction of a second), with a bound against a hang.
      for (let round = 1; round <= 200 && (kills < 20 || round <= 5); round++) {
        const image = await e.pusher.pushImage('shop/gitops-chaos', 'live', { seed: `${ns}-${round}` });
        pushed.push(image.digest);
        await op.waitUntil(() => inGit(image.digest), `round ${round}: ${image.digest} in git`, 120_000);
      }
    } finally {
      stop = true;
      await killer;
      http.onPush = undefined;
      await op.stop();
      operator = await e.operator('e2e-gitops', 'gitops-leader');
    }
    const commits = (await repos.log(repo)).filter((c) => /Patchline-Change: /.test(c.body)).reverse();
    const written: string[] = [];
    for (const c of commits) {
      const text = await repos.file(repo, 'apps/values.yaml', c.sha);
      written.push(/digest: (sha256:[0-9a-f]{64})/.exec(text)?.[1] ?? '');
    }
    console.log(
      `      ${kills} kills (${killsOnPush} as a push arrived), ${pushed.length - 1} digests, ${commits.length} commits`,
    );
    assert.ok(kills >= 20, `killed ${kills} times`);
    assert.deepEqual(written, pushed.slice(1), 'exactly one commit per new digest, in order, none lost');
    assert.equal(new Set(commits.map((c) => /Patchline-Change: (\S+)/.exec(c.body)?.[1])).size, commits.length);
    assert.ok(await inGit(pushed.at(-1)!), 'the last digest is in the files');
  });
});
