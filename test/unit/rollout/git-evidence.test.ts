// The evidence a reviewer reads in a write-back's pull request and commit: built from what the
// ImagePolicies and RebuildTriggers say, escaped where it comes from outside.
import assert from 'node:assert/strict';
import type { ImagePolicy, RebuildTrigger } from '../../../src/api/v1alpha1/index.ts';
import { targetsOf } from '../../../src/controllers/gitwriteback/decide.ts';
import { pullRequestContent } from '../../../src/rollout/git/evidence.ts';
import { commitMessage } from '../../../src/rollout/git/message.ts';
import type { ValueChange } from '../../../src/rollout/git/edit.ts';

const OLD = `sha256:${'1'.repeat(64)}`;
const NEW = `sha256:${'2'.repeat(64)}`;
const BASE_OLD = `sha256:${'a'.repeat(64)}`;
const BASE_NEW = `sha256:${'b'.repeat(64)}`;

const policy: ImagePolicy = {
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    image: 'registry.example/shop/web',
    follow: { tag: '1.4' },
    workloads: {},
    rollout: { mode: 'GitOps', gitOps: { writeBackRef: { name: 'fleet' } } },
  },
  status: {
    latest: {
      tag: '1.4',
      digest: NEW,
      verified: true,
      checks: [
        { name: 'registry', passed: true, message: 'from an approved registry' },
        {
          name: 'signature',
          passed: true,
          message: 'signed by https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main',
        },
        { name: 'provenance', passed: true, message: `built on ${BASE_NEW} (provenance attestation)` },
        {
          name: 'vulnerabilities',
          passed: true,
          message: 'trivy-operator shop/replicaset-web: no finding above HIGH that is not allowed',
          findings: { critical: 0, high: 1, medium: 4, low: 9, unknown: 0 },
        },
        { name: 'age', passed: true, message: 'built 2026-12-06T01:00:00Z, within the maximum age 720h' },
      ],
    },
    gitOps: { desired: { digest: NEW, tag: '1.4', reason: 'Rollout', since: '2026-12-06T02:00:00Z' } },
    workloads: [
      {
        kind: 'Deployment',
        name: 'web',
        container: 'app',
        runningDigest: OLD,
        vulnerabilities: { critical: 2, high: 5, medium: 4, low: 9, unknown: 0, report: 'shop/replicaset-web-old' },
      },
      { kind: 'Deployment', name: 'web-canary', container: 'app', runningDigest: OLD },
    ],
  },
};

const trigger: RebuildTrigger = {
  metadata: { name: 'web', namespace: 'shop' },
  spec: { baseImages: [{ image: 'python:3.12' }], target: { image: 'registry.example/shop/web:1.4' }, build: {} },
  status: {
    bases: [{ image: 'python:3.12', digest: BASE_NEW, previousDigest: BASE_OLD }],
    build: { baseImage: 'python:3.12', id: 'ca12', url: 'https://ci.example/runs/ca12' },
    landed: { digest: NEW },
  },
};

const changes: ValueChange[] = [
  {
    policy: 'shop/web',
    file: 'apps/web/deployment.yaml',
    line: 21,
    from: `registry.example/shop/web:1.4@${OLD}`,
    to: `registry.example/shop/web:1.4@${NEW}`,
  },
];

describe('write-back evidence', () => {
  const [target] = targetsOf([policy], [trigger]);
  const data = { writeBack: 'shop/fleet', changeId: 'c0ffee1234', contexts: [target!.context], changes };

  it('gathers the checks with the scan, the replaced digest and its scan, the rebuild and the workloads', () => {
    const c = target!.context;
    assert.deepEqual(c.checks.find((x) => x.name === 'vulnerabilities')?.findings, {
      critical: 0,
      high: 1,
      medium: 4,
      low: 9,
      unknown: 0,
    });
    assert.deepEqual(c.replaced, { digest: OLD, findings: { critical: 2, high: 5, medium: 4, low: 9, unknown: 0 } });
    assert.deepEqual(c.workloads, ['Deployment/web (app)', 'Deployment/web-canary (app)']);
    assert.deepEqual(c.rebuild, {
      trigger: 'shop/web',
      baseImage: 'python:3.12',
      fromBase: BASE_OLD,
      toBase: BASE_NEW,
      buildId: 'ca12',
      buildUrl: 'https://ci.example/runs/ca12',
    });
  });

  it('gives a reviewer everything on the pull request page', () => {
    const { title, body } = pullRequestContent({}, data);
    assert.equal(title, 'Update image: web sha256:111111111111 → 1.4@sha256:222222222222');
    for (const expected of [
      '| Image | `registry.example/shop/web:1.4` |',
      `| Digest | \`sha256:111111111111\` → \`${NEW}\` |`,
      '| Rebuilt by | RebuildTrigger `shop/web`: base `python:3.12` `sha256:aaaaaaaaaaaa` → `sha256:bbbbbbbbbbbb`, build [ca12](https://ci.example/runs/ca12) |',
      '| Reaches | Deployment/web (app), Deployment/web-canary (app) |',
      '| signature | signed by https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main |',
      `| provenance | built on ${BASE_NEW} (provenance attestation) |`,
      '| age | built 2026-12-06T01:00:00Z, within the maximum age 720h |',
      '| Severity | new `sha256:222222222222` | replaced `sha256:111111111111` |',
      '| Critical | 0 | 2 |',
      '| High | 1 | 5 |',
      `- \`apps/web/deployment.yaml:21\`: \`registry.example/shop/web:1.4@${OLD}\` → \`registry.example/shop/web:1.4@${NEW}\``,
      '<!-- Patchline-Change: c0ffee1234 -->',
    ])
      assert.ok(body.includes(expected), `the body says ${expected}\n---\n${body}`);
  });

  it('says the same in the commit message', () => {
    const message = commitMessage(undefined, data);
    assert.match(message, /passed: registry: from an approved registry; signature: signed by https:\/\/github.com/);
    assert.match(
      message,
      /vulnerabilities: 0 critical, 1 high, 4 medium, 9 low \(replaces sha256:111111111111: 2 critical, 5 high, 4 medium, 9 low\)/,
    );
    assert.match(
      message,
      /rebuilt: RebuildTrigger shop\/web: base python:3\.12 sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb \(build ca12 https:\/\/ci\.example\/runs\/ca12\)/,
    );
    assert.match(message, /reaches: Deployment\/web \(app\), Deployment\/web-canary \(app\)/);
    assert.match(message, /\n\nPatchline-Change: c0ffee1234\n$/);
  });

  it('escapes what comes from outside: pipes, newlines, backticks, links that are not http(s)', () => {
    const hostile = {
      ...target!.context,
      checks: [{ name: 'signature', message: 'signed by evil | injected\n# heading `code`' }],
      rebuild: {
        trigger: 'shop/web',
        baseImage: 'python',
        toBase: BASE_NEW,
        buildId: 'x',
        buildUrl: 'javascript:alert(1)',
      },
    };
    const { body } = pullRequestContent({}, { ...data, contexts: [hostile] });
    assert.ok(body.includes("| signature | signed by evil \\| injected # heading 'code' |"));
    assert.ok(!body.includes('javascript:'), 'a build link that is not http(s) is shown as text');
  });

  it('fills templates, keeps the title to one line within 256 characters, and the body within the limit', () => {
    const long = pullRequestContent(
      { title: `${'x'.repeat(300)}\nsecond line`, body: 'Patch {{count}} image(s) by {{writeBack}}\n\n{{summary}}' },
      data,
    );
    assert.equal(long.title.length, 256);
    assert.match(long.body, /^Patch 1 image\(s\) by shop\/fleet\n\nUpdate image: web/);
    const huge = pullRequestContent({ body: 'y'.repeat(100_000) }, data);
    assert.ok(huge.body.length <= 60_000);
    assert.ok(huge.body.endsWith("(cut to fit the forge's limit)\n\n<!-- Patchline-Change: c0ffee1234 -->\n"));
  });
});
