// Figures of the test control plane: build time (cached, or cold with --cold), start-up
// time over several starts, and memory idle and under 100 Deployments.
//
//   node bench/controlplane.ts [--starts N] [--cold]
//
// --cold builds into empty Go build and module caches in a temp dir (about 10 minutes on
// 2 cores, and needs the Go module proxy); without it, the build figure is the cached one.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KUBECTL, startControlPlane, type ControlPlane } from '../test/support/controlplane.ts';
import { ROOT } from '../test/support/fixtures.ts';
import { rssMiB } from './process-memory.ts';

const { values } = parseArgs({
  options: { starts: { type: 'string', default: '5' }, cold: { type: 'boolean', default: false } },
});
const starts = Number(values.starts);

/** Children of every thread of the process (Go starts children from any thread). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.push(
        ...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
      );
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function memory(cp: ControlPlane): string {
  const pid = cp.process.pid!;
  const kcm = childPids(pid)[0];
  const main = rssMiB(pid);
  const cm = kcm ? rssMiB(kcm) : NaN;
  return `apiserver+etcd+fakelet ${main.toFixed(0)} MiB, controller-manager ${cm.toFixed(0)} MiB, total ${(main + cm).toFixed(0)} MiB`;
}

function kubectl(cp: ControlPlane, args: string[], input?: string): void {
  const r = spawnSync(KUBECTL, args, { input, encoding: 'utf8', env: { ...process.env, KUBECONFIG: cp.kubeconfig } });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// --- build ---------------------------------------------------------------------------------
{
  const started = Date.now();
  const env = { ...process.env };
  let caches: string | undefined;
  if (values.cold) {
    caches = mkdtempSync(join(tmpdir(), 'testcp-cold-'));
    Object.assign(env, {
      GOCACHE: join(caches, 'gocache'),
      GOMODCACHE: join(caches, 'gomod'),
      TESTCP_BIN_DIR: join(caches, 'bin'),
    });
  }
  const out = execFileSync('bash', [join(ROOT, 'test', 'controlplane', 'build.sh')], { env, encoding: 'utf8' });
  console.log(
    `build (${values.cold ? 'cold: empty Go caches' : 'cached'}): ${((Date.now() - started) / 1000).toFixed(1)} s — ${out.trim()}`,
  );
  if (caches) {
    execFileSync('chmod', ['-R', 'u+w', caches]);
    rmSync(caches, { recursive: true, force: true });
  }
}

// --- start-up ------------------------------------------------------------------------------
const times: number[] = [];
let last: ControlPlane | undefined;
for (let i = 0; i < starts; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'testcp-bench-'));
  const cp = await startControlPlane({ dir: join(dir, 'cp') });
  times.push(cp.startupMs);
  if (i < starts - 1) {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  } else last = cp;
}
times.sort((a, b) => a - b);
console.log(`start-up to ready over ${starts} starts: p50 ${percentile(times, 50)} ms, max ${times.at(-1)} ms`);

// --- memory --------------------------------------------------------------------------------
const cp = last!;
await new Promise((resolve) => setTimeout(resolve, 2000)); // let controllers settle after start
console.log(`memory idle: ${memory(cp)}`);
const deployments = Array.from({ length: 100 }, (_, i) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `d${i}`, namespace: 'default' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: `d${i}` } },
      template: {
        metadata: { labels: { app: `d${i}` } },
        spec: { containers: [{ name: 'c', image: `registry.example.com/app:${i}` }] },
      },
    },
  }),
).join('\n');
const loadStarted = Date.now();
kubectl(cp, ['apply', '-f', '-'], deployments);
kubectl(cp, ['wait', '--for=condition=Available', '--timeout=300s', 'deployment', '--all', '-n', 'default']);
console.log(
  `100 Deployments x 2 replicas available in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s; memory: ${memory(cp)}`,
);
await cp.stop();
rmSync(join(cp.dir, '..'), { recursive: true, force: true });
