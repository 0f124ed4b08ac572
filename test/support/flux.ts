// A real GitOps engine for the end-to-end tests: Flux's source-controller and
// kustomize-controller (built from their Go modules by test/flux/build.sh), run as processes
// against the test control plane with the admin kubeconfig, syncing from the test git server.
// The source-controller serves the artifacts it fetched on a loopback port; the
// kustomize-controller downloads them from there and applies them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';
import { freePort } from './registry-server.ts';

const FLUX_BIN = join(ROOT, '.cache', 'bin');
const FLUX_CRDS = join(ROOT, '.cache', 'flux', 'crds');

/** The CRD files of the two controllers, for `kubectl apply -f`. */
export function fluxCrdFiles(): string[] {
  return readdirSync(FLUX_CRDS)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(FLUX_CRDS, f));
}

/**
 * A GitRepository and a Kustomization applying `path` of `url` every `interval`: what a Flux
 * user writes to sync a repository (credentials from the Secret `secret`).
 */
export function fluxSync(url: string, secret: string, interval: string, path = './apps'): object[] {
  return [
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: 'fleet' },
      spec: { url, ref: { branch: 'main' }, interval, secretRef: { name: secret } },
    },
    {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: 'apps' },
      spec: { path, prune: true, interval, sourceRef: { kind: 'GitRepository', name: 'fleet' } },
    },
  ];
}

export class Flux {
  readonly logs: string[] = [];
  private readonly children: ChildProcess[];

  private constructor(children: ChildProcess[]) {
    this.children = children;
    for (const child of children) {
      child.stdout?.on('data', (d: Buffer) => this.logs.push(d.toString()));
      child.stderr?.on('data', (d: Buffer) => this.logs.push(d.toString()));
    }
  }

  /** Starts both controllers, watching every namespace, with leader election off. */
  static async start(kubeconfig: string): Promise<Flux> {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-flux-'));
    const storage = join(dir, 'storage');
    mkdirSync(storage);
    const [storagePort, sourceMetrics, sourceHealth, kustomizeMetrics, kustomizeHealth] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    );
    const env = { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: kubeconfig, RUNTIME_NAMESPACE: 'flux-system' };
    const source = spawn(
      join(FLUX_BIN, 'source-controller'),
      [
        `--storage-path=${storage}`,
        `--storage-addr=127.0.0.1:${storagePort}`,
        `--storage-adv-addr=127.0.0.1:${storagePort}`,
        `--metrics-addr=127.0.0.1:${sourceMetrics}`,
        `--health-addr=127.0.0.1:${sourceHealth}`,
        '--enable-leader-election=false',
        '--artifact-retention-ttl=10s',
        '--log-level=info',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const kustomize = spawn(
      join(FLUX_BIN, 'kustomize-controller'),
      [
        `--metrics-addr=127.0.0.1:${kustomizeMetrics}`,
        `--health-addr=127.0.0.1:${kustomizeHealth}`,
        '--enable-leader-election=false',
        '--no-remote-bases=true',
        '--log-level=info',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new Flux([source, kustomize]);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
