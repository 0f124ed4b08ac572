// The release workflow cannot run here (no Docker engine, no GitHub): actionlint (built from its
// Go module, test/actionlint) checks it, and these tests check that it does what a release
// needs — both architectures, SBOM and provenance, keyless signing, the chart as an OCI
// artifact, manifests and chart pinned to the digest it built.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../support/fixtures.ts';

const WORKFLOW = join(ROOT, '.github', 'workflows', 'release.yml');
const ACTIONLINT = join(ROOT, '.cache', 'bin', 'actionlint');

interface Step {
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Workflow {
  on: { push: { tags: string[] } };
  permissions: Record<string, string>;
  jobs: Record<string, { permissions: Record<string, string>; steps: Step[] }>;
}

describe('release workflow (.github/workflows/release.yml)', () => {
  const workflow = parse(readFileSync(WORKFLOW, 'utf8')) as Workflow;
  const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
  const run = steps.map((s) => s.run ?? '').join('\n');

  it('passes actionlint', () => {
    const out = execFileSync(ACTIONLINT, ['-no-color', WORKFLOW], { encoding: 'utf8' });
    assert.equal(out, '');
  });

  it('runs on version tags with no permission by default, and only the job’s own', () => {
    assert.deepEqual(workflow.on.push.tags, ['v[0-9]+.[0-9]+.[0-9]+*']);
    assert.deepEqual(workflow.permissions, {});
    assert.deepEqual(workflow.jobs.release?.permissions, {
      contents: 'write',
      packages: 'write',
      'id-token': 'write',
    });
  });

  it('tests first, then builds both architectures with an SBOM and provenance', () => {
    const test = steps.findIndex((s) => s.run?.includes('npm test'));
    const build = steps.findIndex((s) => s.uses?.startsWith('docker/build-push-action@'));
    assert.ok(test >= 0 && build > test, 'npm test runs before the build');
    const w = steps[build]!.with!;
    assert.equal(w.platforms, 'linux/amd64,linux/arm64');
    assert.equal(w.sbom, true);
    assert.equal(w.provenance, 'mode=max');
    assert.equal(w.push, true);
  });

  it('signs the digest it built keyless, and pins the chart and the manifests to that digest', () => {
    assert.ok(steps.some((s) => s.uses?.startsWith('sigstore/cosign-installer@')));
    assert.match(run, /cosign sign --yes "\$IMAGE@\$DIGEST"/);
    for (const s of steps.filter((x) => x.env?.DIGEST))
      assert.equal(s.env!.DIGEST, '${{ steps.build.outputs.digest }}');
    assert.match(run, /helm push "patchline-\$version\.tgz" "\$CHARTS"/);
    assert.match(run, /kustomize edit set image "patchline=\$IMAGE@\$DIGEST"/);
    // The chart's values carry the line the workflow rewrites, and the chart honours it.
    assert.match(readFileSync(join(ROOT, 'charts', 'patchline', 'values.yaml'), 'utf8'), /^ {2}digest: ''$/m);
  });

  it('never puts a secret on a command line', () => {
    assert.doesNotMatch(run, /secrets\./);
  });
});
