// Where a CPU profile's time went: self time by function and by package (or our own source
// folder), from a .cpuprofile written by `node --cpu-prof` (bench/scale.ts --cpu-prof).
//
//   node bench/cpu-summary.ts <file.cpuprofile> [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
const file = positionals[0];
if (!file) throw new Error('usage: node bench/cpu-summary.ts <file.cpuprofile> [--top 25]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const top = Number(values.top);
const totalMs = (profile.endTime - profile.startTime) / 1000;
const msPerSample = totalMs / Math.max(1, profile.samples.length);

/** node_modules/<package>, our own src/<folder>, node:internal, or what V8 names (GC, idle). */
function bucket(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : `(${name || 'anonymous'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const ours = /\/(src|dist)\/([^/]+)/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url;
}

const byFunction = new Map<string, number>();
const byBucket = new Map<string, number>();
for (const n of profile.nodes) {
  const ms = (n.hitCount ?? 0) * msPerSample;
  if (ms === 0) continue;
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? `${url.replace(/^.*\/(node_modules|src|dist)\//, '$1/')}:${lineNumber + 1}` : '';
  const fn = `${functionName || '(anonymous)'} ${where}`.trim();
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  const b = bucket(url, functionName);
  byBucket.set(b, (byBucket.get(b) ?? 0) + ms);
}
const busyMs = [...byBucket].filter(([b]) => b !== '(idle)').reduce((a, [, ms]) => a + ms, 0);
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(ms / 1000).toFixed(1).padStart(8)} s ${((100 * ms) / totalMs).toFixed(1).padStart(5)}%  ${k}`);
  }
};
console.log(`${(totalMs / 1000).toFixed(1)} s profiled, ${(busyMs / 1000).toFixed(1)} s busy`);
print('by package or folder (self time)', byBucket);
print('by function (self time)', byFunction);
console.log(
  JSON.stringify({
    bench: 'cpu-summary',
    profiledS: Math.round(totalMs / 100) / 10,
    busyS: Math.round(busyMs / 100) / 10,
    top: Object.fromEntries(
      [...byBucket]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([k, ms]) => [k, Math.round(ms / 100) / 10]),
    ),
  }),
);
