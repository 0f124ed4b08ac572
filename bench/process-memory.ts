// The resident memory of a process (Linux /proc), as the benches report it, and the V8
// options the operator ships with.
import { readFileSync } from 'node:fs';
import { sleep } from '../src/runtime/clock.ts';

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The NODE_OPTIONS of the install manifests: the benches run the operator as shipped. */
export function shippedNodeOptions(): string {
  const manifest = readFileSync(new URL('../manifests/deployment.yaml', import.meta.url), 'utf8');
  const m = /- name: NODE_OPTIONS\s+value: (.+)/.exec(manifest);
  if (!m) throw new Error('manifests/deployment.yaml sets no NODE_OPTIONS');
  return m[1]!.trim();
}

/** The median of five RSS samples a second apart: one figure for a settled process. */
export async function medianRssMiB(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssMiB(pid));
    await sleep(1000);
  }
  return samples.sort((a, b) => a - b)[2]!;
}
