// Pull request mode end to end: the test control plane, a registry that notifies the operator,
// a real git server, Flux's source-controller and kustomize-controller applying main, a
// GitHub-shaped forge (the forge API cannot run here; its merge is a real `git merge` on the
// server), receivers for the notices, and the operator as its ServiceAccount. A new digest
// becomes a pull request with the evidence; merging it rolls the pods through Flux; killing
// the operator between the push and the pull request never leaves two requests or one
// without its branch.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { stringify } from 'yaml';
import type { GitWriteBack, GitWriteBackStatus } from '../../src/api/v1alpha1/index.ts';
import { FakeGithub } from '../support/fake-github.ts';
import { FakeHttp, json } from '../support/fake-http.ts';
import { Flux, fluxCrdFiles, fluxSync } from '../support/flux.ts';
import { GitHttpServer, GitRepos } from '../support/git-server.ts';
import { env, kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy, requestReconcile, runningPods, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv, eventReasons } from './support/rebuild-env.ts';

const TOKEN = 'ghp_e2e_patchline';
const NOTIFY_TOKEN = 'e2e-notify-hmac';

function deploymentYaml(image: string, marker: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: web',
    '  labels:',
    '    app: web',
    'spec:',
    '  replicas: 2',
    '  selector:',
    '    matchLabels:',
    '      app: web',
    '  template:',
    '    metadata:',
    '      labels:',
    '        app: web',
    '    spec:',
    '      containers:',
    '        - name: app',
    `          image: ${image} # ${marker}`,
    '',
  ].join('\n');
}

function writeBackStatus(ns: string, name: string): GitWriteBackStatus {
  const out = kubectl(['get', 'gitwriteback', name, '-n', ns, '-o', 'json'], { allowFailure: true }).stdout;
  return out ? ((JSON.parse(out) as GitWriteBack).status ?? {}) : {};
}

describe('GitOps pull request mode: a reviewed pull request, merged, applied by Flux, followed to the pods', function () {
  this.timeout(300_000);
  let e: RebuildEnv;
  let repos: GitRepos;
  let http: GitHttpServer;
  let github: FakeGithub;
  let flux: Flux;
  let operator: Operator;
  const receiver = new FakeHttp();
  const notices: { path: string; headers: Record<string, unknown>; body: string }[] = [];
  const tokens = [TOKEN];

  before(async () => {
    e = await RebuildEnv.start();
    repos = new GitRepos();
    http = await GitHttpServer.start({ users: { flux: 'flux-password' }, tokens }, repos);
    github = await FakeGithub.start({ repos, tokens });
    receiver.on('POST', /^\/notices\/.*/, (req, res, body) => {
      notices.push({ path: req.url ?? '', headers: req.headers, body: body.toString() });
      json(res, 200, 'ok');
    });
    await receiver.start();
    for (const file of fluxCrdFiles()) kubectl(['apply', '--server-side', '-f', file]);
    kubectl(['create', 'namespace', 'flux-system'], { allowFailure: true });
    flux = await Flux.start(env().cp.kubeconfig);
    operator = await e.operator('e2e-gitops-pr', 'gitops-pr-leader');
  });
  after(async () => {
    await operator?.stop();
    await flux?.stop();
    await receiver.stop();
    await github?.stop();
    await http?.stop();
    await e?.stop();
    repos?.remove();
  });

  /** The repository (acme/<name> on the forge), the Secrets, Flux applying main to `ns`. */
  async function fleet(ns: string, repo: string, image: string): Promise<void> {
    await repos.create(`acme/${repo}`, {
      'apps/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${ns}\nresources:\n  - web.yaml\n`,
      'apps/web.yaml': deploymentYaml(image, `{"$imagepolicy": "${ns}:web"}`),
    });
    const secret = (name: string, data: Record<string, string>): void => {
      kubectl([
        'create',
        'secret',
        'generic',
        name,
        '-n',
        ns,
        ...Object.entries(data).map(([k, v]) => `--from-literal=${k}=${v}`),
      ]);
    };
    secret('flux-git', { username: 'flux', password: 'flux-password' });
    secret('patchline-git', { username: 'git', password: TOKEN });
    secret('notify-generic', { address: `http://${receiver.host}/notices/generic`, token: NOTIFY_TOKEN });
    secret('notify-slack', { address: `http://${receiver.host}/notices/slack/T0/B0/secret` });
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: fluxSync(http.url(`acme/${repo}`), 'flux-git', '5s')
        .map((o) => stringify(o))
        .join('---\n'),
    });
  }

  function applyWriteBack(ns: string, repo: string): void {
    const spec = {
      url: http.url(`acme/${repo}`),
      branch: 'main',
      push: { branch: 'patchline/updates' },
      paths: ['apps'],
      secretRef: { name: 'patchline-git' },
      batchWindow: '0s',
      interval: '30s',
      pullRequest: { provider: 'github', apiURL: github.api, labels: ['patchline'] },
      notify: [
        { secretRef: { name: 'notify-generic' } },
        { secretRef: { name: 'notify-slack' }, format: 'slack', events: ['PullRequestMerged'] },
      ],
    };
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'GitWriteBack',
        metadata: { name: 'fleet' },
        spec,
      }),
    });
  }

  function applyGitOpsPolicy(ns: string, repository: string, tag: string): void {
    applyPolicy(ns, 'web', {
      image: repository,
      follow: { tag },
      workloads: { names: ['web'] },
      verify: { registries: [e.registry.host], maxAge: '720h' },
      rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'fleet' } }, progressDeadline: '3m' },
    });
  }

  async function podsRun(ns: string, image: string): Promise<boolean> {
    const pods = await runningPods(ns, 'web');
    return pods.length === 2 && pods.every((p) => p.status?.containerStatuses?.[0]?.imageID === image);
  }

  it('a new digest → a pull request with the evidence → merged → Flux applies the merge commit → every pod runs it; notices on the way', async () => {
    const ns = newNamespace('e2e-gitops-pr');
    const repo = `fleet-${ns}`;
    const repository = `${e.registry.host}/shop/gitops-pr`;
    const v1 = await e.pusher.pushImage('shop/gitops-pr', '3.0', { seed: `${ns}-1` });
    await fleet(ns, repo, `${repository}:3.0@${v1.digest}`);
    await operator.waitUntil(() => podsRun(ns, `${repository}@${v1.digest}`), 'Flux applied the first commit', 90_000);
    applyWriteBack(ns, repo);
    applyGitOpsPolicy(ns, repository, '3.0');
    await waitForPolicy(
      operator,
      ns,
      'web',
      'the running digest is up to date',
      (x) => workload(x, 'Deployment', 'web')?.state === 'UpToDate',
    );

    const v2 = await e.pusher.pushImage('shop/gitops-pr', '3.0', { seed: `${ns}-2` });
    // Recorded in status only after the request is decorated (labels and reviewers are calls of their own).
    await operator.waitUntil(
      () => github.open('acme', repo).length === 1 && writeBackStatus(ns, 'fleet').pullRequest?.state === 'Open',
      'a pull request is opened and recorded',
      90_000,
    );
    const pr = github.open('acme', repo)[0]!;
    assert.equal(pr.head, 'patchline/updates');
    assert.deepEqual(pr.labels, ['patchline']);
    assert.match(
      pr.title,
      new RegExp(`^Update image: web sha256:${v1.digest.slice(7, 19)} → 3\\.0@sha256:${v2.digest.slice(7, 19)}$`),
    );
    assert.match(pr.body, /\| registry \| from an approved registry \|/);
    assert.match(pr.body, /\| age \| built .*within the maximum age/);
    assert.match(pr.body, /\| Reaches \| Deployment\/web \(app\) \|/);
    assert.match(await repos.file(`acme/${repo}`, 'apps/web.yaml', 'patchline/updates'), new RegExp(v2.digest));
    assert.match(
      await repos.file(`acme/${repo}`, 'apps/web.yaml', 'main'),
      new RegExp(v1.digest),
      'main waits for the review',
    );
    const pending = await waitForPolicy(
      operator,
      ns,
      'web',
      'the policy waits for the review',
      (x) => x.gitOps?.pullRequest !== undefined,
    );
    assert.equal(pending.gitOps?.pullRequest, `${github.api}/acme/${repo}/pull/${pr.number}`);
    const w = workload(pending, 'Deployment', 'web');
    assert.equal(w?.state, 'Pending');
    assert.match(w?.message ?? '', /proposed in pull request #1, waiting for review/);
    assert.ok(await podsRun(ns, `${repository}@${v1.digest}`), 'nothing rolls before the merge');

    const merge = await github.merge(pr.number);
    requestReconcile(ns, 'fleet', 'gitwriteback'); // instead of waiting for the next look at the request
    const done = await waitForPolicy(operator, ns, 'web', 'the merged digest runs on every pod', (x) => {
      const wl = workload(x, 'Deployment', 'web');
      return wl?.state === 'UpToDate' && wl.runningDigest === v2.digest;
    });
    assert.equal(workload(done, 'Deployment', 'web')?.commit, merge, 'followed from the merge commit');
    assert.ok(await podsRun(ns, `${repository}@${v2.digest}`));
    const status = writeBackStatus(ns, 'fleet');
    assert.deepEqual([status.pullRequest?.state, status.pullRequest?.mergeCommit], ['Merged', merge]);
    assert.ok(eventReasons(ns, 'fleet').includes('PullRequestOpened'));
    assert.ok(eventReasons(ns, 'fleet').includes('PullRequestMerged'));
    assert.equal(github.pulls.filter((p) => p.repo === repo).length, 1);

    await operator.waitUntil(
      () => notices.some((n) => n.path.endsWith('/generic') && n.headers['x-patchline-event'] === 'RolledOut'),
      'the rollout notice',
    );
    const generic = notices.filter((n) => n.path.endsWith('/generic'));
    assert.deepEqual(
      generic.map((n) => n.headers['x-patchline-event']).filter((ev) => ev !== 'Committed'),
      ['PullRequestOpened', 'PullRequestMerged', 'RolledOut'],
    );
    for (const n of generic) {
      const expected = createHmac('sha256', NOTIFY_TOKEN)
        .update(`${String(n.headers['x-patchline-timestamp'])}.${n.body}`)
        .digest('hex');
      assert.equal(n.headers['x-patchline-signature'], `sha256=${expected}`, 'signed');
    }
    const slack = notices.filter((n) => n.path.includes('/slack/'));
    assert.equal(slack.length, 1, 'the Slack target asked only for merges');
    assert.match((JSON.parse(slack[0]!.body) as { text: string }).text, /^\*Pull request merged\* · GitWriteBack /);
  });

  it('kill -9 between the push and the pull request, again and again: never two requests, never one without its branch', async () => {
    const ns = newNamespace('e2e-gitops-pr-chaos');
    const repo = `fleet-${ns}`;
    const repository = `${e.registry.host}/shop/gitops-pr-chaos`;
    const v0 = await e.pusher.pushImage('shop/gitops-pr-chaos', 'live', { seed: `${ns}-0` });
    await fleet(ns, repo, `${repository}:live@${v0.digest}`);
    applyWriteBack(ns, repo);
    applyGitOpsPolicy(ns, repository, 'live');
    await operator.stop();
    // This operator watches only this namespace: its restarts are about this write-back alone.
    const chaosOperator = (): Promise<Operator> =>
      e.operator('e2e-gitops-pr-chaos', 'gitops-pr-chaos-leader', ['--watch-namespaces', ns]);
    let op = await chaosOperator();
    let kills = 0;
    const rounds = 6;
    const proposed = async (digest: string): Promise<boolean> => {
      const head = await repos.head(`acme/${repo}`, 'patchline/updates');
      const pr = writeBackStatus(ns, 'fleet').pullRequest;
      return (
        head !== undefined &&
        (await repos.file(`acme/${repo}`, 'apps/web.yaml', 'patchline/updates')).includes(digest) &&
        pr?.state === 'Open' &&
        pr.headCommit === head
      );
    };
    try {
      for (let round = 1; round <= rounds; round++) {
        // Odd rounds: killed as the push arrives (it may or may not land). Even rounds: killed as
        // the forge receives the create, which then completes: a request nobody recorded.
        let killing: Promise<void> | undefined;
        const kill = (): Promise<void> =>
          (killing ??= op.kill().then(() => {
            kills++;
          }));
        if (round % 2 === 1) http.onPush = () => void kill();
        else github.onCreate = kill;
        const image = await e.pusher.pushImage('shop/gitops-pr-chaos', 'live', { seed: `${ns}-${round}` });
        await op.waitUntil(() => killing !== undefined, `round ${round}: the kill point`, 120_000);
        http.onPush = undefined;
        github.onCreate = undefined;
        await killing;
        op = await chaosOperator();
        await op.waitUntil(
          () => proposed(image.digest),
          `round ${round}: ${image.digest} proposed and recorded`,
          120_000,
        );
        assert.equal(github.open('acme', repo).length, 1, `round ${round}: one open request`);
        assert.equal(
          github.pulls.filter((p) => p.repo === repo).length,
          round,
          `round ${round}: one request per round`,
        );
        // Merged, so that the next round opens a request again (and the create is a kill point again).
        await github.merge(github.open('acme', repo)[0]!.number);
        requestReconcile(ns, 'fleet', 'gitwriteback');
        await op.waitUntil(
          () => writeBackStatus(ns, 'fleet').pullRequest?.state === 'Merged',
          `round ${round}: the merge recorded`,
          60_000,
        );
      }
    } finally {
      http.onPush = undefined;
      github.onCreate = undefined;
      await op.stop();
      operator = await e.operator('e2e-gitops-pr', 'gitops-pr-leader');
    }
    console.log(`      ${kills} kills between the push and the pull request, ${rounds} requests`);
    assert.equal(kills, rounds);
    const creates = github.requests.filter((r) => r.method === 'POST' && r.path === `/repos/acme/${repo}/pulls`);
    assert.equal(creates.filter((r) => r.status === 201).length, rounds, 'one request created per change');
    assert.ok(
      creates.every((r) => r.status === 201 || JSON.stringify(r.answer).includes('A pull request already exists')),
      'never a create for a branch that does not exist; any other create was a race, found again',
    );
    for (const pr of github.pulls.filter((p) => p.repo === repo))
      assert.ok(pr.merge_commit_sha, `#${pr.number} was opened with its branch and merged`);
  });
});
