// The README's first command must not rot: `npm run demo -- --ci` plays the whole loop on
// its own control plane, registry and build service, exits 0 only when the pods run the
// rebuilt digest, and leaves nothing running or on disk.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT } from '../support/fixtures.ts';

function run(
  args: string[] = ['--ci'],
  options: { kubeconfig?: string; input?: string } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'demo', 'run.ts'), ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KUBECONFIG: options.kubeconfig ?? '',
        HOME: options.kubeconfig ? process.env.HOME : '/nonexistent',
      },
    });
    child.stdin.end(options.input ?? '');
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

const listening = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe('the demo (npm run demo -- --ci)', () => {
  it('plays the whole loop, reports each stage and the time to patch, and cleans up', async function () {
    this.timeout(300_000);
    const { code, out } = await run();
    assert.equal(code, 0, out);
    for (const line of [
      /control plane ready/,
      /installed the CRDs and manifests/,
      /ImagePolicy accepted demo\/app:1\.0 .* both pods run it/,
      /the base image demo\/base:1 gets a new digest/,
      /RebuildTrigger saw the new base digest \(\+[\d.]+ s\)/,
      /rebuilt demo\/app:1\.0 landed: [0-9a-f]{12}, provenance Verified/,
      /Deployment\/web pinned to the new digest/,
      /both pods run the new digest \(\+[\d.]+ s\)/,
      /rebuildtrigger\.patchline\.dev\/web .* Landed .* True/,
      /imagepolicy\.patchline\.dev\/web .* True +1\/1 +True/,
      /\$ kubectl patchline tree 127\.0\.0\.1:\d+\/demo\/base:1 -n /,
      /BaseImage 127\.0\.0\.1:\d+\/demo\/base: at [0-9a-f]{12}\n└─ RebuildTrigger .*\/web: /,
      /└─ ImagePolicy .*\/web: 1\.0@[0-9a-f]{12} accepted/,
      /└─ Container Deployment\/web\/web: UpToDate/,
      /\$ kubectl patchline why deployment\/web -n /,
      /container web \(ImagePolicy .*\/web\): UpToDate, on the newest acceptable digest/,
      /time to patch, from the base push:/,
      /the whole loop completed: base patched → rebuilt → verified → rolled out in [\d.]+ s \(the build itself: 1\.0 s\)/,
      // Callback mode: the finished builds were reported to the operator, never polled for.
      /the build service was asked for a build's status 0 times and called back [1-9]\d* times/,
      /cleaned up: everything the demo started is stopped and removed/,
    ])
      assert.match(out, line);
    // Nothing left: the work directory is gone and the registry no longer listens.
    const work = /its log: (\S+)\/operator\.log/.exec(out)?.[1];
    assert.ok(work && !existsSync(work), `${work ?? '?'} removed`);
    const registry = /registry ready at (127\.0\.0\.1):(\d+)/.exec(out);
    assert.ok(registry);
    assert.equal(await listening(registry[1]!, Number(registry[2])), false);
  });

  it('with a cluster configured, says what it would install there and asks first; "no" installs nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-demo-test-'));
    const kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'prod', cluster: { server: 'https://127.0.0.1:9' } }],
        users: [{ name: 'me', user: { token: 'x' } }],
        contexts: [{ name: 'prod-admin', context: { cluster: 'prod', user: 'me' } }],
        'current-context': 'prod-admin',
      }),
    );
    const { code, out } = await run([], { kubeconfig, input: 'n\nn\n' });
    assert.equal(code, 0, out);
    assert.match(out, /A cluster is configured: context prod-admin \(https:\/\/127\.0\.0\.1:9\)/);
    for (const object of [
      'CustomResourceDefinition/imagepolicies.patchline.dev',
      'ClusterRole/patchline-operator',
      'Deployment/patchline',
      'ValidatingWebhookConfiguration/patchline-admission',
    ])
      assert.ok(out.includes(`  - ${object}`), object);
    assert.match(out, /Install into this cluster\? \[y\/N\]/);
    assert.match(out, /nothing installed; bye/);
    assert.doesNotMatch(out, /control plane ready/);
  });
});
