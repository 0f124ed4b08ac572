// The kubectl-patchline release archive (scripts/cli-archive.sh, run by the release workflow):
// built with production dependencies only, unpacked as krew would unpack it (the manifest's
// files), its sha256 the one the generated manifest names, and the plugin run from it against
// the control plane.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../support/fixtures.ts';
import { env } from './support/env.ts';

describe('the kubectl-patchline release archive', () => {
  it('holds what the krew manifest installs, with its sha256, and runs with production dependencies only', function () {
    this.timeout(300_000);
    const out = mkdtempSync(join(tmpdir(), 'patchline-cli-archive-'));
    const built = spawnSync(
      'bash',
      [join(ROOT, 'scripts', 'cli-archive.sh'), 'v9.9.9', out, 'https://example.test/dl'],
      {
        encoding: 'utf8',
        timeout: 240_000,
      },
    );
    assert.equal(built.status, 0, built.stderr);
    const archive = join(out, 'patchline-cli-v9.9.9.tar.gz');
    const manifest = parse(readFileSync(join(out, 'patchline-krew.yaml'), 'utf8')) as {
      spec: {
        version: string;
        platforms: { uri: string; sha256: string; bin: string; files: { from: string; to: string }[] }[];
      };
    };
    const platform = manifest.spec.platforms[0]!;
    assert.equal(manifest.spec.version, 'v9.9.9');
    assert.equal(platform.uri, 'https://example.test/dl/patchline-cli-v9.9.9.tar.gz');
    assert.equal(platform.sha256, createHash('sha256').update(readFileSync(archive)).digest('hex'));

    const unpacked = join(out, 'unpacked');
    mkdirSync(unpacked);
    assert.equal(spawnSync('tar', ['-xzf', archive, '-C', unpacked]).status, 0);
    for (const f of platform.files)
      assert.ok(existsSync(join(unpacked, f.from.replace(/\/\*$/, ''))), `${f.from} is in the archive`);
    // No development dependency came along.
    for (const dev of ['mocha', 'typescript', 'eslint', 'nock'])
      assert.ok(!existsSync(join(unpacked, 'node_modules', dev)), `${dev} is not in the archive`);

    const plugin = join(unpacked, platform.bin);
    const r = spawnSync(plugin, ['get', 'policies', '-A', '-o', 'json'], {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: env().cp.kubeconfig },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
    assert.equal(spawnSync(plugin, ['--help']).status, 0);
  });
});
