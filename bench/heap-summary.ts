// What holds a V8 heap snapshot: self sizes summed by node type and constructor name, the
// largest first. For the closing notes of memory work (see bench/references.ts).
//
//   node bench/heap-summary.ts Heap.<…>.heapsnapshot [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' } },
  allowPositionals: true,
});
const file = positionals[0];
if (!file) throw new Error('usage: node bench/heap-summary.ts <file.heapsnapshot> [--top N]');

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
  number,
  number,
  number,
];
const totals = new Map<string, { bytes: number; count: number }>();
let all = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + typeAt]!]!;
  const size = snap.nodes[i + sizeAt]!;
  // Strings are grouped as one; objects by constructor; the rest by type.
  const key = type === 'object' ? `object ${snap.strings[snap.nodes[i + nameAt]!]}` : type;
  const t = totals.get(key) ?? { bytes: 0, count: 0 };
  t.bytes += size;
  t.count++;
  totals.set(key, t);
  all += size;
}
const top = [...totals].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(values.top));
console.log(`${(all / 1048576).toFixed(1)} MiB in ${snap.nodes.length / width} nodes`);
for (const [key, t] of top)
  console.log(`${(t.bytes / 1048576).toFixed(2).padStart(8)} MiB ${String(t.count).padStart(9)}  ${key}`);

// Strings held more than once: what interning them (one copy per value) would save.
const copies = new Map<string, { bytes: number; count: number }>();
for (let i = 0; i < snap.nodes.length; i += width) {
  if (types[snap.nodes[i + typeAt]!] !== 'string') continue;
  const value = snap.strings[snap.nodes[i + nameAt]!]!;
  const c = copies.get(value) ?? { bytes: 0, count: 0 };
  c.bytes += snap.nodes[i + sizeAt]!;
  c.count++;
  copies.set(value, c);
}
const repeated = [...copies].filter(([, c]) => c.count > 1);
const saving = repeated.reduce((sum, [, c]) => sum + (c.bytes * (c.count - 1)) / c.count, 0);
console.log(
  `\nstrings held more than once: ${repeated.length} values, ${(saving / 1048576).toFixed(1)} MiB in the extra copies; the costliest:`,
);
for (const [value, c] of repeated
  .sort((a, b) => (b[1].bytes * (b[1].count - 1)) / b[1].count - (a[1].bytes * (a[1].count - 1)) / a[1].count)
  .slice(0, Number(values.top)))
  console.log(
    `${((c.bytes * (c.count - 1)) / c.count / 1048576).toFixed(2).padStart(8)} MiB ${String(c.count).padStart(9)}×  ${JSON.stringify(value.slice(0, 80))}`,
  );
