// One write-back update run against a real git server (smart HTTP through git http-backend):
// every policy's value in one commit, nothing when the files already say it, a change pushed
// before a crash found again by its trailer, a lost race re-applied on the new head, and a
// push branch rebuilt on the branch's head. History and files are read with the git CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageTarget } from '../../src/rollout/git/edit.ts';
import type { ChangeContext } from '../../src/rollout/git/message.ts';
import { updateRepository, type Intent, type UpdateRequest } from '../../src/rollout/git/update.ts';
import { GitWorkspace } from '../../src/rollout/git/workspace.ts';
import { GitHttpServer, GitRepos } from '../support/git-server.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

const manifests = {
  'apps/web/deployment.yaml': [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: web',
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: web',
    `          image: registry.example/shop/web:1.4@${D1} # {"$imagepolicy": "shop:web"}`,
    '',
  ].join('\n'),
  'apps/api/kustomization.yaml': [
    'resources: [deployment.yaml]',
    'images:',
    '  - name: ghcr.io/acme/api',
    '    newTag: "2.0"',
    `    digest: ${D1}`,
    '',
  ].join('\n'),
  'README.md': 'not touched\n',
};

function target(
  name: string,
  repository: string,
  tag: string,
  digest: string,
): ImageTarget & { context: ChangeContext } {
  return {
    policy: { namespace: 'shop', name },
    repository,
    tag,
    digest,
    format: 'TagAndDigest',
    context: {
      policy: `shop/${name}`,
      image: repository,
      tag,
      digest,
      reason: 'Rollout',
      checks: [
        { name: 'registry', message: 'from an approved registry' },
        { name: 'signature', message: 'signed by key cosign' },
      ],
      rebuild: {
        trigger: 'shop/web',
        baseImage: 'python:3.12',
        fromBase: 'sha256:aaaa',
        toBase: 'sha256:bbbb',
        buildId: 'b-7',
      },
    },
  };
}

describe('git write-back update runs against a real git server', () => {
  let repos: GitRepos;
  let http: GitHttpServer;
  const dirs: string[] = [];

  before(async () => {
    repos = new GitRepos();
    http = await GitHttpServer.start({ users: { bot: 'pw' } }, repos);
  });
  after(async () => {
    await http.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    repos.remove();
  });

  const workspace = (repo: string): GitWorkspace => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-update-'));
    dirs.push(dir);
    return new GitWorkspace({ dir, url: http.url(repo), credentials: { username: 'bot', password: 'pw' } });
  };
  const request = (over: Partial<UpdateRequest> = {}): UpdateRequest => ({
    writeBack: 'shop/fleet',
    branch: 'main',
    paths: ['apps'],
    author: { name: 'Patchline', email: 'patchline@example.com' },
    targets: [target('web', 'registry.example/shop/web', '1.4', D2), target('api', 'ghcr.io/acme/api', '2.1', D2)],
    now: () => new Date('2026-12-06T10:00:00Z'),
    ...over,
  });
  const accept = (): Promise<boolean> => Promise.resolve(true);

  it('writes every policy in one commit that says what changed and why; then nothing more', async () => {
    await repos.create('one-commit', manifests);
    const ws = workspace('one-commit');
    const intents: Intent[] = [];
    const outcome = await updateRepository(ws, request(), (i) => {
      intents.push(i);
      return Promise.resolve(true);
    });
    assert.equal(outcome.kind, 'pushed');
    const log = await repos.log('one-commit');
    assert.equal(log.length, 2);
    assert.equal(log[0]!.sha, outcome.kind === 'pushed' ? outcome.sha : '');
    assert.equal(
      log[0]!.subject,
      'Update 2 images: web sha256:111111111111 → 1.4@sha256:222222222222, api sha256:111111111111 → 2.1@sha256:222222222222',
    );
    assert.match(log[0]!.body, /shop\/web: registry\.example\/shop\/web:1\.4@sha256:2{64}/);
    assert.match(log[0]!.body, /apps\/web\/deployment\.yaml:10: registry\.example\/shop\/web:1\.4@sha256:1{64} → /);
    assert.match(log[0]!.body, /passed: registry: from an approved registry; signature: signed by key cosign/);
    assert.match(log[0]!.body, /rebuilt: RebuildTrigger shop\/web: base python:3\.12/);
    assert.match(log[0]!.body, new RegExp(`Patchline-Change: ${intents[0]!.changeId}$`));
    assert.match(await repos.file('one-commit', 'apps/web/deployment.yaml'), new RegExp(`web:1\\.4@${D2} # \\{`));
    assert.equal(
      await repos.file('one-commit', 'apps/api/kustomization.yaml'),
      manifests['apps/api/kustomization.yaml'].replace('"2.0"', '"2.1"').replace(D1, D2),
    );
    const again = await updateRepository(ws, request(), accept);
    assert.equal(again.kind, 'unchanged');
    assert.deepEqual(again.kind === 'unchanged' ? [...again.files] : [], [
      ['shop/api', ['apps/api/kustomization.yaml']],
      ['shop/web', ['apps/web/deployment.yaml']],
    ]);
    assert.equal((await repos.log('one-commit')).length, 2, 'no second commit');
  });

  it('a crash after the push: the recorded change is found again by its trailer, not committed twice', async () => {
    await repos.create('crash-after', manifests);
    let recorded: Intent | undefined;
    const first = await updateRepository(workspace('crash-after'), request(), (i) => {
      recorded = i;
      return Promise.resolve(true);
    });
    assert.equal(first.kind, 'pushed');
    // The process died before writing the pushed commit to status; a new replica starts cold.
    const second = await updateRepository(
      workspace('crash-after'),
      request({ pending: { changeId: recorded!.changeId } }),
      accept,
    );
    assert.deepEqual(second, {
      kind: 'recovered',
      changeId: recorded!.changeId,
      sha: first.kind === 'pushed' ? first.sha : '',
    });
    assert.equal((await repos.log('crash-after')).length, 2);
  });

  it('a crash before the push: the change is made once, by the next run', async () => {
    await repos.create('crash-before', manifests);
    let recorded: Intent | undefined;
    await assert.rejects(
      updateRepository(workspace('crash-before'), request(), (i) => {
        recorded = i;
        return Promise.reject(new Error('killed'));
      }),
    );
    assert.equal((await repos.log('crash-before')).length, 1, 'nothing pushed');
    const next = await updateRepository(
      workspace('crash-before'),
      request({ pending: { changeId: recorded!.changeId } }),
      accept,
    );
    assert.equal(next.kind, 'pushed');
    assert.equal((await repos.log('crash-before')).length, 2);
  });

  it('a push that lost a race is re-applied on the new head, keeping the other commit', async () => {
    await repos.create('race', manifests);
    const outcome = await updateRepository(workspace('race'), request(), async () => {
      await repos.commit('race', 'main', { 'apps/other.yaml': 'x: 1\n' }, 'someone else was first');
      return true;
    });
    assert.equal(outcome.kind, 'pushed');
    const log = await repos.log('race');
    assert.deepEqual(
      log.map((c) => c.subject.split(':')[0]),
      ['Update 2 images', 'someone else was first', 'initial manifests'],
    );
    assert.equal(await repos.file('race', 'apps/other.yaml'), 'x: 1\n');
  });

  it('status moved on before the push: nothing is pushed', async () => {
    await repos.create('abandoned', manifests);
    const outcome = await updateRepository(workspace('abandoned'), request(), () => Promise.resolve(false));
    assert.deepEqual(outcome, { kind: 'abandoned' });
    assert.equal((await repos.log('abandoned')).length, 1);
  });

  it('a push branch is rebuilt on the branch head each run and replaced; the branch is never touched', async () => {
    await repos.create('review', manifests);
    const ws = workspace('review');
    const first = await updateRepository(ws, request({ pushBranch: 'patchline/updates' }), accept);
    assert.equal(first.kind, 'pushed');
    assert.equal((await repos.log('review', 'main')).length, 1);
    const moved = await repos.commit('review', 'main', { 'apps/other.yaml': 'y: 1\n' }, 'main moved on');
    const second = await updateRepository(
      ws,
      request({ pushBranch: 'patchline/updates', targets: [target('web', 'registry.example/shop/web', '1.5', D3)] }),
      accept,
    );
    assert.equal(second.kind, 'pushed');
    const branch = await repos.log('review', 'patchline/updates');
    assert.deepEqual(
      branch.map((c) => c.sha).slice(1, 2),
      [moved],
      'one Patchline commit on top of the current head of main',
    );
    assert.match(
      await repos.file('review', 'apps/web/deployment.yaml', 'patchline/updates'),
      new RegExp(`web:1\\.5@${D3}`),
    );
    assert.equal((await repos.log('review', 'main'))[0]!.sha, moved, 'main untouched');
  });

  it('writes Argo CD override files beside the edited files, in the same commit', async () => {
    await repos.create('argocd', manifests);
    const targets = request().targets.map((t) =>
      t.policy.name === 'web'
        ? {
            ...t,
            argocd: {
              application: 'shop-web',
              path: 'apps/web',
              helm: { image: 'image.repository', tag: 'image.tag' },
            },
          }
        : t,
    );
    const outcome = await updateRepository(workspace('argocd'), request({ targets }), accept);
    assert.equal(outcome.kind, 'pushed');
    assert.equal(
      (await repos.log('argocd')).length,
      2,
      'one commit for the marker, the kustomization and the override file',
    );
    assert.equal(
      await repos.file('argocd', 'apps/web/.argocd-source-shop-web.yaml'),
      [
        'helm:',
        '  parameters:',
        '  - name: image.repository',
        '    value: registry.example/shop/web',
        '    forcestring: true',
        '  - name: image.tag',
        `    value: 1.4@${D2}`,
        '    forcestring: true',
        '',
      ].join('\n'),
    );
    assert.equal((await updateRepository(workspace('argocd'), request({ targets }), accept)).kind, 'unchanged');
  });
});
