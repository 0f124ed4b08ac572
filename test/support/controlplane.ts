// Starts the test control plane (test/controlplane, built by its build.sh into .cache/bin)
// and waits until it says it is ready.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';
import { waitFor } from './manual-clock.ts';

const BIN_DIR = join(ROOT, '.cache', 'bin');
const TESTCP = join(BIN_DIR, 'testcp');
export const KUBECTL = join(BIN_DIR, 'kubectl');

export interface ControlPlane {
  kubeconfig: string;
  server: string;
  dir: string;
  auditLog: string | undefined;
  process: ChildProcess;
  /** Milliseconds from spawn to ready. */
  startupMs: number;
  /**
   * Restarts kube-apiserver on its port (etcd and the rest keep running): every watch ends,
   * and etcd is compacted past every revision handed out while the server is down, so every
   * client resuming its resourceVersion is told 410 Gone and relists. Resolves when it is
   * ready again, with the milliseconds it took.
   */
  restartApiServer(): Promise<number>;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  dir: string;
  auditLog?: string;
  timeoutMs?: number;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  if (!existsSync(TESTCP)) {
    throw new Error(`${TESTCP} is missing: build it with \`npm run controlplane:build\``);
  }
  const args = ['-dir', options.dir];
  if (options.auditLog) args.push('-audit-log', options.auditLog);
  const started = Date.now();
  const child = spawn(TESTCP, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stderr.on('data', keep);

  const ready = await new Promise<{ kubeconfig: string; server: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`control plane not ready after ${options.timeoutMs ?? 180_000}ms:\n${output.join('').slice(-4000)}`),
      );
    }, options.timeoutMs ?? 180_000);
    child.stdout.on('data', (chunk: Buffer) => {
      keep(chunk);
      const m = /testcp ready in \S+: kubeconfig (\S+) \(server (\S+)\)/.exec(chunk.toString());
      if (m) {
        clearTimeout(timer);
        resolve({ kubeconfig: m[1]!, server: m[2]! });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`control plane exited (${code ?? signal}) before it was ready:\n${output.join('').slice(-4000)}`),
      );
    });
  });
  const startupMs = Date.now() - started;
  child.removeAllListeners('exit');

  return {
    ...ready,
    dir: options.dir,
    auditLog: options.auditLog,
    process: child,
    startupMs,
    restartApiServer: async () => {
      const countFile = join(options.dir, 'restarts');
      const count = (): number => (existsSync(countFile) ? Number(readFileSync(countFile, 'utf8').trim()) : 0);
      const before = count();
      const begun = Date.now();
      child.kill('SIGUSR1');
      await waitFor(
        () => {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`control plane exited during an API server restart:\n${output.join('').slice(-4000)}`);
          return count() > before;
        },
        'kube-apiserver restarted and ready',
        120_000,
        100,
      );
      return Date.now() - begun;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
