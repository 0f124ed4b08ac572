// The whole loop on this machine, in one command (`npm run demo`): a real control plane (the
// one the tests use), a real registry that notifies the operator of pushes, a small build
// service speaking the webhook provider's protocol, and the operator running as its
// ServiceAccount with the shipped RBAC. Then the story, with real objects:
//
//   base and app images pushed → RebuildTrigger, ImagePolicy, Deployment applied → app v1
//   rolled out → the base gets a new digest → the trigger rebuilds → the rebuilt image lands
//   → the policy verifies it (built on the new base) → the Deployment is pinned → its pods
//   run the new digest
//
// Each stage prints one line with its time; the end prints `kubectl get`, `kubectl patchline tree`
// and `why` (docs/cli.md), and the time to patch per stage. `--ci` runs it without questions and
// exits 0 only if the loop completed; everything started is stopped and removed at the end either way.
//
// The environment pieces are the test infrastructure's (test/support): the demo shows what
// the tests prove, on the same parts.
import { run as runCli } from '../src/cli/main.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import type { ImagePolicy, RebuildTrigger } from '../src/api/v1alpha1/index.ts';
import { Annotations } from '../src/registry/manifest.ts';
import { createKubeClient, loadKubeConfig, type KubeClient } from '../src/runtime/kube-client.ts';
import { BuildService } from '../test/support/build-service.ts';
import { KUBECTL, startControlPlane, type ControlPlane } from '../test/support/controlplane.ts';
import { ROOT } from '../test/support/fixtures.ts';
import {
  OPERATOR_NAMESPACE,
  installPatchline,
  kubectlWith,
  writeServiceAccountKubeconfig,
} from '../test/support/install.ts';
import { OciPusher } from '../test/support/oci-push.ts';
import { freePort, startRegistry, type RegistryServer } from '../test/support/registry-server.ts';

const ci = process.argv.includes('--ci');
const STAGE_TIMEOUT_MS = 120_000;
const NS = 'demo-shop';
const HMAC_KEY = 'demo-build-hmac-key';
/** How long the demo's build service takes to "build" (push) the rebuilt image. */
const BUILD_MS = 1_000;
const HOOK_TOKEN = 'demo-registry-hook-token';

const started = Date.now();
const clock = (): string => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`;
const say = (line: string): void => void process.stdout.write(`[${clock()}] ${line}\n`);

interface Cleanup {
  what: string;
  run: () => Promise<void> | void;
}
const cleanups: Cleanup[] = [];
async function cleanUp(): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c.run();
    } catch (err) {
      process.stderr.write(`cleaning up ${c.what}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

/** The cluster of the user's kubeconfig, when one is configured. */
function configuredCluster(): { context: string; server: string } | undefined {
  const file = process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
  if (!process.env.KUBECONFIG && !existsSync(file)) return undefined;
  const context = spawnSync(KUBECTL, ['config', 'current-context'], { encoding: 'utf8' });
  if (context.status !== 0 || !context.stdout.trim()) return undefined;
  const server = spawnSync(KUBECTL, ['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'], {
    encoding: 'utf8',
  });
  return { context: context.stdout.trim(), server: server.stdout.trim() };
}

/** One reader for every question; an answer that never comes (stdin closed) counts as no. */
const lines: string[] = [];
const waiting: ((line: string | undefined) => void)[] = [];
let inputClosed = false;
let reader: ReturnType<typeof createInterface> | undefined;
function nextLine(): Promise<string | undefined> {
  if (!reader) {
    reader = createInterface({ input: process.stdin });
    reader.on('line', (line) => {
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    });
    reader.on('close', () => {
      inputClosed = true;
      for (const w of waiting.splice(0)) w(undefined);
    });
  }
  if (lines.length > 0) return Promise.resolve(lines.shift());
  if (inputClosed) return Promise.resolve(undefined);
  return new Promise((resolve) => waiting.push(resolve));
}

async function ask(question: string): Promise<boolean> {
  process.stdout.write(question);
  const answer = await nextLine();
  if (answer === undefined) process.stdout.write('\n');
  return /^y(es)?$/i.test((answer ?? '').trim());
}

/** Which cluster to use: the local control plane, or (asked first) the configured one. */
async function chooseCluster(): Promise<{ kubeconfig: string; server: string; caFile?: string } | 'local' | 'cancel'> {
  const configured = configuredCluster();
  if (!configured || ci) return 'local';
  const objects = kubectlWith(process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config'), [
    'kustomize',
    join(ROOT, 'manifests'),
  ])
    .stdout.split('\n---\n')
    .map((doc) => {
      const kind = /^kind: (\S+)/m.exec(doc)?.[1];
      const name = /^ {2}name: (\S+)/m.exec(doc)?.[1];
      return kind ? `${kind}/${name ?? ''}` : '';
    })
    .filter(Boolean);
  process.stdout.write(
    [
      `A cluster is configured: context ${configured.context} (${configured.server}).`,
      'The demo would install into it:',
      ...objects.map((o) => `  - ${o}`),
      `  - Namespace/${NS} with a Deployment, a RebuildTrigger, an ImagePolicy and a Secret`,
      'and run the operator on this machine as the patchline ServiceAccount, with a registry on',
      "127.0.0.1 (the cluster's nodes must be able to pull from it: a single-node cluster on this machine).",
      '',
    ].join('\n'),
  );
  if (await ask('Install into this cluster? [y/N] ')) {
    const kubeconfig = process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
    return { kubeconfig, server: configured.server };
  }
  return (await ask('Run the demo on a local control plane instead? [y/N] ')) ? 'local' : 'cancel';
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  explain: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + STAGE_TIMEOUT_MS;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${STAGE_TIMEOUT_MS / 1000} s. ${await explain()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startOperator(
  kubeconfig: string,
  configFile: string,
  ports: { webhook: number; probe: number },
  logFile: string,
): ChildProcess {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js'), '--config-file', configFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      KUBECONFIG: kubeconfig,
      POD_NAME: 'patchline-demo',
      POD_NAMESPACE: OPERATOR_NAMESPACE,
      PATCHLINE_LOG_FORMAT: 'json',
      PATCHLINE_PROBE_ADDRESS: `127.0.0.1:${ports.probe}`,
      PATCHLINE_WEBHOOK_ADDRESS: `127.0.0.1:${ports.webhook}`,
    },
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  return child;
}

async function main(): Promise<number> {
  const choice = await chooseCluster();
  if (choice === 'cancel') {
    reader?.close();
    say('nothing installed; bye');
    return 0;
  }
  const work = mkdtempSync(join(tmpdir(), 'patchline-demo-'));
  cleanups.push({ what: work, run: () => rmSync(work, { recursive: true, force: true }) });

  // 1. A cluster.
  let kubeconfig: string;
  let cluster: { server: string; caFile: string | undefined };
  if (choice === 'local') {
    const cp: ControlPlane = await startControlPlane({ dir: join(work, 'cp') });
    cleanups.push({ what: 'the control plane', run: () => cp.stop() });
    kubeconfig = cp.kubeconfig;
    cluster = { server: cp.server, caFile: join(cp.dir, 'pki', 'apiserver.crt') };
    say(`control plane ready: kube-apiserver, etcd, controllers (${cp.server})`);
  } else {
    kubeconfig = choice.kubeconfig;
    cluster = { server: choice.server, caFile: undefined };
  }
  const kubectl = (args: string[], input?: string) => kubectlWith(kubeconfig, args, input ? { input } : {});
  const admin: KubeClient = await createKubeClient(loadKubeConfig({ kubeconfig }));
  cleanups.push({ what: 'the admin client', run: () => admin.close() });

  // 2. A registry that tells the operator about pushes, and a build service.
  const webhookPort = await freePort();
  const registry: RegistryServer = await startRegistry({
    notifications: [
      { url: `http://127.0.0.1:${webhookPort}/hooks/registry`, headers: { Authorization: `Bearer ${HOOK_TOKEN}` } },
    ],
  });
  cleanups.push({ what: 'the registry', run: () => registry.stop() });
  // The build service reports finished builds to the operator (callback mode: no polling), at
  // the address the operator sends with each build (webhooks.buildCallbackURL below).
  const builds = new BuildService({ registryUrl: registry.url, hmacKey: HMAC_KEY, buildMs: BUILD_MS });
  await builds.start();
  cleanups.push({ what: 'the build service', run: () => builds.stop() });
  say(`registry ready at ${registry.host} (notifies the operator of every push); build service at ${builds.url}`);

  // 3. Patchline, as users install it, and the operator as its ServiceAccount.
  installPatchline(kubeconfig);
  if (choice !== 'local') {
    cleanups.push({
      what: 'what the demo installed',
      run: () => {
        kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false']);
        kubectl(['delete', '-k', join(ROOT, 'manifests'), '--ignore-not-found', '--wait=false']);
      },
    });
  }
  say('installed the CRDs and manifests/ (namespace, ServiceAccount, least-privilege RBAC)');
  const operatorKubeconfig = join(work, 'operator.kubeconfig');
  if (!cluster.caFile) {
    // A configured cluster: reuse its CA from the kubeconfig.
    const ca = kubectl([
      'config',
      'view',
      '--raw',
      '--minify',
      '-o',
      'jsonpath={.clusters[0].cluster.certificate-authority-data}',
    ]).stdout;
    cluster.caFile = join(work, 'cluster-ca.crt');
    writeFileSync(cluster.caFile, Buffer.from(ca, 'base64'));
  }
  writeServiceAccountKubeconfig(kubeconfig, { server: cluster.server, caFile: cluster.caFile }, operatorKubeconfig);
  writeFileSync(join(work, 'hook-token'), HOOK_TOKEN);
  const configFile = join(work, 'config.yaml');
  writeFileSync(
    configFile,
    stringify({
      registries: [{ host: registry.host, insecure: true }],
      webhooks: {
        receivers: [
          { name: 'registry', format: 'distribution', auth: { type: 'bearer', tokenFile: join(work, 'hook-token') } },
        ],
        buildCallbackURL: `http://127.0.0.1:${webhookPort}`,
      },
    }),
  );
  const logFile = join(work, 'operator.log');
  const operator = startOperator(
    operatorKubeconfig,
    configFile,
    { webhook: webhookPort, probe: await freePort() },
    logFile,
  );
  cleanups.push({
    what: 'the operator',
    run: () =>
      new Promise<void>((resolve) => {
        if (operator.exitCode !== null) return resolve();
        operator.once('exit', () => resolve());
        operator.kill('SIGTERM');
      }),
  });
  say(`operator started as ${OPERATOR_NAMESPACE}/patchline (its log: ${logFile})`);

  // 4. The images, and the resources users keep in git.
  const pusher = new OciPusher(registry.url);
  const base1 = await pusher.pushImage('demo/base', '1', { seed: 'demo-base-1' });
  const app1 = await pusher.pushImage('demo/app', '1.0', {
    seed: 'demo-app-1',
    annotations: { [Annotations.baseName]: `${registry.host}/demo/base:1`, [Annotations.baseDigest]: base1.digest },
  });
  say(
    `pushed ${registry.host}/demo/base:1 (${base1.digest.slice(7, 19)}) and demo/app:1.0 built on it (${app1.digest.slice(7, 19)})`,
  );
  kubectl(['create', 'namespace', NS]);
  kubectl(['create', 'secret', 'generic', 'build-creds', '-n', NS, `--from-literal=hmacKey=${HMAC_KEY}`]);
  const manifests = [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'web', image: `${registry.host}/demo/app:1.0` }] },
        },
      },
    },
    {
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'RebuildTrigger',
      metadata: { name: 'web' },
      spec: {
        baseImages: [{ image: `${registry.host}/demo/base:1` }],
        target: { image: `${registry.host}/demo/app:1.0` },
        build: {
          // No statusURL: the build service calls back when the build is done.
          webhook: { url: `${builds.url}/builds` },
          credentialsRef: { name: 'build-creds' },
        },
        settle: '0s',
      },
    },
    {
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name: 'web' },
      spec: {
        image: `${registry.host}/demo/app`,
        follow: { tag: '1.0' },
        workloads: { names: ['web'] },
        verify: { registries: [registry.host], provenance: { requireBase: true } },
      },
    },
  ];
  kubectl(['apply', '-n', NS, '-f', '-'], manifests.map((m) => stringify(m)).join('---\n'));
  say(`applied Deployment/web (2 replicas of demo/app:1.0), RebuildTrigger/web and ImagePolicy/web in ${NS}`);

  const get = <T>(path: string) => admin.requestJson<T>('GET', path);
  const trigger = () => get<RebuildTrigger>(`/apis/patchline.dev/v1alpha1/namespaces/${NS}/rebuildtriggers/web`);
  const policy = () => get<ImagePolicy>(`/apis/patchline.dev/v1alpha1/namespaces/${NS}/imagepolicies/web`);
  const deploymentImage = async () =>
    (
      await get<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(
        `/apis/apps/v1/namespaces/${NS}/deployments/web`,
      )
    ).spec.template.spec.containers[0]!.image;
  const podsRun = async (digest: string): Promise<boolean> => {
    const pods = await get<{
      items: {
        metadata: { deletionTimestamp?: string };
        status?: { phase?: string; containerStatuses?: { imageID?: string }[] };
      }[];
    }>(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dweb`);
    const live = pods.items.filter((p) => !p.metadata.deletionTimestamp);
    return (
      live.length === 2 &&
      live.every((p) => p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.imageID?.endsWith(digest))
    );
  };
  const why = async (): Promise<string> => {
    const [t, p] = await Promise.all([trigger().catch(() => undefined), policy().catch(() => undefined)]);
    const ready = (c?: { type: string; reason?: string; message?: string }[]) =>
      c?.find((x) => x.type === 'Ready') ?? { reason: '?', message: '' };
    return `RebuildTrigger Ready: ${ready(t?.status?.conditions).reason} ${ready(t?.status?.conditions).message}; ImagePolicy Ready: ${ready(p?.status?.conditions).reason} ${ready(p?.status?.conditions).message}. Operator log: ${logFile}`;
  };

  await waitFor(
    'v1 accepted, pinned and running',
    async () =>
      (await policy()).status?.latest?.verified === true &&
      (await deploymentImage()).endsWith(app1.digest) &&
      (await podsRun(app1.digest))
        ? true
        : undefined,
    why,
  );
  say(
    `ImagePolicy accepted demo/app:1.0 (${app1.digest.slice(7, 19)}) and pinned Deployment/web to it; both pods run it`,
  );
  await waitFor(
    'the trigger following its base',
    async () => ((await trigger()).status?.bases?.[0]?.digest === base1.digest ? true : undefined),
    why,
  );

  // 5. The base is patched.
  const t0 = Date.now();
  const stages: [string, number][] = [];
  const stage = (name: string): void => {
    stages.push([name, Date.now() - t0]);
    say(`${name} (+${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  };
  const base2 = await pusher.pushImage('demo/base', '1', { seed: 'demo-base-2' });
  say(`the base image demo/base:1 gets a new digest: ${base2.digest.slice(7, 19)} (a security patch)`);
  await waitFor(
    'base change seen',
    async () => ((await trigger()).status?.bases?.[0]?.digest === base2.digest ? true : undefined),
    why,
  );
  stage('RebuildTrigger saw the new base digest');
  await waitFor(
    'build started',
    async () => {
      const b = (await trigger()).status?.build;
      return b?.baseDigest === base2.digest && b.id ? b : undefined;
    },
    why,
  );
  stage('rebuild started on the build service (webhook provider, reports back by callback)');
  const landed = await waitFor(
    'rebuilt image landed',
    async () => {
      const l = (await trigger()).status?.landed;
      return l?.baseDigest === base2.digest && l.digest ? { digest: l.digest, provenance: l.provenance } : undefined;
    },
    why,
  );
  stage(`rebuilt demo/app:1.0 landed: ${landed.digest.slice(7, 19)}, provenance ${landed.provenance ?? ''}`);
  await waitFor(
    'new digest accepted',
    async () => {
      const l = (await policy()).status?.latest;
      return l && l.digest === landed.digest && l.verified ? true : undefined;
    },
    why,
  );
  stage('ImagePolicy verified it: approved registry, pinned digest, built on the new base');
  await waitFor(
    'Deployment pinned',
    async () => ((await deploymentImage()).endsWith(landed.digest) ? true : undefined),
    why,
  );
  stage('Deployment/web pinned to the new digest (server-side apply, field manager patchline)');
  await waitFor('pods run the new digest', async () => ((await podsRun(landed.digest)) ? true : undefined), why);
  stage('both pods run the new digest');

  process.stdout.write(`\n$ kubectl get rebuildtriggers,imagepolicies -n ${NS}\n`);
  process.stdout.write(kubectl(['get', 'rebuildtriggers,imagepolicies', '-n', NS]).stdout);
  // The same chain through the command line (docs/cli.md): what the base patch reached, and why
  // the Deployment is where it is.
  for (const args of [
    ['tree', `${registry.host}/demo/base:1`],
    ['why', 'deployment/web'],
  ]) {
    process.stdout.write(`\n$ kubectl patchline ${args.join(' ')} -n ${NS}\n`);
    const code = await runCli({
      argv: [...args, '-n', NS, '--kubeconfig', kubeconfig],
      env: process.env,
      stdout: process.stdout,
      stderr: process.stderr,
    });
    if (code !== 0) throw new Error(`kubectl patchline ${args[0] ?? ''} exited with ${code}`);
  }
  process.stdout.write('\ntime to patch, from the base push:\n');
  let previous = 0;
  for (const [name, at] of stages) {
    process.stdout.write(
      `  ${(at / 1000).toFixed(1).padStart(6)} s  (+${((at - previous) / 1000).toFixed(1)} s)  ${name}\n`,
    );
    previous = at;
  }
  process.stdout.write(
    `\nthe whole loop completed: base patched → rebuilt → verified → rolled out in ${(previous / 1000).toFixed(1)} s (the build itself: ${(BUILD_MS / 1000).toFixed(1)} s)\n`,
  );
  process.stdout.write(
    `the build service was asked for a build's status ${builds.statusRequests} times and called back ${builds.callbacks.length} times\n`,
  );

  if (!ci && process.stdin.isTTY) {
    process.stdout.write(
      `\nEverything is still running. In another terminal:\n  export KUBECONFIG=${kubeconfig}\n  ${KUBECTL} describe imagepolicy web -n ${NS}\n`,
    );
    await ask('Press Enter to stop and clean up. ');
  }
  reader?.close();
  return 0;
}

let code: number;
process.once('SIGINT', () => {
  process.stderr.write('\ninterrupted: cleaning up\n');
  void cleanUp().then(() => process.exit(130));
});
try {
  code = await main();
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  code = 1;
}
await cleanUp();
say(code === 0 ? 'cleaned up: everything the demo started is stopped and removed' : 'cleaned up');
process.exit(code);
