// What the operator's image holds, run as the image runs it: the production dependencies only
// (`npm ci --omit=dev`, as the Dockerfile's dependency stage) beside the compiled dist/, started
// as the image's non-root user (uid 65532) with its working directory and home read-only and
// only a temporary directory to write to. It must elect itself, reconcile a policy to its
// workload's digest, and stop cleanly — needing no development dependency and writing nothing
// outside its temporary directory.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT } from '../support/fixtures.ts';
import { env, newNamespace } from './support/env.ts';
import { Operator } from './support/operator.ts';
import { applyPolicy, applyWorkload, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv } from './support/rebuild-env.ts';

const IMAGE_USER = 65532; // the Dockerfile's USER

/** Every file under a folder, relative, sorted: what a read-only folder must still hold after. */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((f) => relative(dir, join(dir, f))).sort();
}

/** The operator's kubeconfig with its CA inlined: the image's user cannot read the test's files. */
function portableKubeconfig(path: string): string {
  const config = parse(readFileSync(path, 'utf8')) as {
    clusters: { cluster: Record<string, string> }[];
  };
  for (const { cluster } of config.clusters) {
    const caFile = cluster['certificate-authority'];
    if (caFile) {
      cluster['certificate-authority-data'] = readFileSync(caFile).toString('base64');
      delete cluster['certificate-authority'];
    }
  }
  return stringify(config);
}

describe('the operator image’s contents, run as the image runs them', function () {
  this.timeout(600_000);
  let registry: RebuildEnv;
  let op: Operator | undefined;

  before(async () => {
    registry = await RebuildEnv.start();
  });
  after(async () => {
    if (op) await op.stop();
    await registry?.stop();
  });

  it('needs only production dependencies, runs non-root with a read-only working directory and home, and reconciles', async () => {
    // The application folder: package files, dist/, production dependencies — then read-only.
    const app = mkdtempSync(join(tmpdir(), 'patchline-image-app-'));
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(app, f));
    cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    const npm = process.env.npm_execpath;
    execFileSync(
      npm ? process.execPath : 'npm',
      [...(npm ? [npm] : []), 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'],
      { cwd: app, stdio: 'pipe', timeout: 300_000 },
    );
    // What the lock file marks dev-only (a package some production dependency also needs, such
    // as @types/node, is not).
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([path, p]) => p.dev === true && path.startsWith('node_modules/'))
      .map(([path]) => path);
    assert.ok(devOnly.includes('node_modules/typescript') && devOnly.includes('node_modules/mocha'));
    assert.deepEqual(
      devOnly.filter((path) => existsSync(join(app, path))),
      [],
      'no development dependency installed',
    );
    chmodSync(app, 0o555);
    const appBefore = listing(app);
    const home = mkdtempSync(join(tmpdir(), 'patchline-image-home-'));
    chmodSync(home, 0o555);
    // The one writable place, the image's emptyDir at /tmp.
    const scratch = mkdtempSync(join(tmpdir(), 'patchline-image-tmp-'));
    const kubeconfig = join(scratch, 'kubeconfig');
    writeFileSync(kubeconfig, portableKubeconfig(env().operatorKubeconfig), { mode: 0o600 });
    const config = join(scratch, 'config.yaml');
    writeFileSync(config, stringify({ registries: [{ host: registry.registry.host, insecure: true }] }));
    for (const f of [scratch, kubeconfig, config]) chownSync(f, IMAGE_USER, IMAGE_USER);

    const ns = newNamespace('image');
    const pushed = await registry.pusher.pushImage('image/app', '1.0', { seed: `${ns}-v1` });
    applyWorkload(ns, 'Deployment', 'web', `${registry.registry.host}/image/app@${pushed.digest}`);
    op = await Operator.start({
      identity: 'op-image',
      leaseName: `e2e-image-${Date.now()}`,
      args: ['--config-file', config, '--watch-namespaces', ns],
      env: { HOME: home, TMPDIR: scratch, KUBECONFIG: kubeconfig },
      launch: {
        prefix: ['setpriv', `--reuid=${IMAGE_USER}`, `--regid=${IMAGE_USER}`, '--clear-groups'],
        main: join(app, 'dist', 'main.js'),
        cwd: app,
      },
    });
    await op.waitForLog((l) => l.message === 'controllers started', 'elected and started');
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${op.pid}/status`, 'utf8'))?.[1];
    assert.equal(uid, String(IMAGE_USER), 'runs as the image user');
    applyPolicy(ns, 'web', {
      image: `${registry.registry.host}/image/app`,
      follow: { tag: '1.0' },
      workloads: { names: ['web'] },
    });
    const s = await waitForPolicy(
      op,
      ns,
      'web',
      'up to date',
      (x) => x.upToDate === '1/1' && x.latest?.digest === pushed.digest,
    );
    assert.equal(workload(s, 'Deployment', 'web')?.runningDigest, pushed.digest);
    assert.equal(await op.stop(), 0, 'stops cleanly');
    op = undefined;
    assert.deepEqual(listing(app), appBefore, 'nothing written to the application folder');
    assert.deepEqual(listing(home), [], 'nothing written to the home folder');
  });
});
