// The resident memory of a process (Linux /proc), as the benches report it.
import { readFileSync } from 'node:fs';

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
