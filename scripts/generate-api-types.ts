// Generates the TypeScript types of the custom resources from their CRDs (crds/*.yaml, the
// source of truth) into src/api/v1alpha1/*.generated.ts.
//
//   node scripts/generate-api-types.ts           write the files
//   node scripts/generate-api-types.ts --check   fail if a written file is out of date
//
// The generator is kubernetes-fluent-client's `crd --plain` (quicktype underneath). Its
// output is post-processed, because three of its choices do not fit this code base:
//   - `format: date-time` fields are typed Date, but JSON from the API server holds strings;
//   - enums are TypeScript `enum`s, which Node's type stripping cannot run and which do not
//     accept the plain strings read from the API server: they become string-literal unions;
//   - `metadata` is typed as a map of `any`: it becomes the runtime's ObjectMeta, and other
//     open-ended objects become Record<string, unknown>.
// The kfc CLI prints errors but exits 0, so a missing output file is checked for here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const kfcCli = join(root, 'node_modules', 'kubernetes-fluent-client', 'dist', 'cli.js');
const outDir = join(root, 'src', 'api', 'v1alpha1');

interface Target {
  crd: string;
  kind: string;
  out: string;
}

const targets: Target[] = [
  { crd: 'crds/imagepolicies.patchline.dev.yaml', kind: 'ImagePolicy', out: 'imagepolicy.generated.ts' },
  { crd: 'crds/rebuildtriggers.patchline.dev.yaml', kind: 'RebuildTrigger', out: 'rebuildtrigger.generated.ts' },
  { crd: 'crds/gitwritebacks.patchline.dev.yaml', kind: 'GitWriteBack', out: 'gitwriteback.generated.ts' },
];

/** Turns `export enum X { A = "A", B = "B" }` into `export type X = "A" | "B";`. */
export function enumsToUnions(source: string): string {
  return source.replace(/export enum (\w+) \{([^}]*)\}/g, (_all, name: string, body: string) => {
    const values = [...body.matchAll(/=\s*("(?:[^"\\]|\\.)*")/g)].map((m) => m[1]);
    if (values.length === 0) throw new Error(`enum ${name} has no string values`);
    return `export type ${name} = ${values.join(' | ')};`;
  });
}

export function postProcess(source: string, kind: string, crdPath: string): string {
  let out = enumsToUnions(source);
  out = out.replace(/:\s*Date\b/g, ': string');
  out = out.replace(/metadata\?: \{ \[key: string\]: any \};/, 'metadata?: ObjectMeta;');
  // Open-ended objects (x-kubernetes-preserve-unknown-fields) are unknown, not any: code
  // that reads them must check what it gets.
  out = out.replace(/\{ \[key: string\]: any \}/g, 'Record<string, unknown>');
  out = out.replace(/\/\/ eslint-disable-next-line[^\n]*\n/g, '');
  // Both kinds have a Spec and a status type; give them the kind's name.
  out = out.replace(/\bStatusObject\b/g, `${kind}Status`).replace(/\bSpec\b/g, `${kind}Spec`);
  const header =
    `// Generated from ${crdPath} by scripts/generate-api-types.ts. Do not edit: change the CRD and run\n` +
    `// \`npm run generate\`. Timestamps are RFC 3339 strings, as the API server sends them.\n` +
    `import type { ObjectMeta } from '../../runtime/kube-types.ts';\n\n`;
  return header + out;
}

async function generate(target: Target): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'patchline-types-'));
  try {
    execFileSync(process.execPath, [kfcCli, 'crd', '--plain', join(root, target.crd), work], { stdio: 'pipe' });
    const files = readdirSync(work).filter((f) => f.endsWith('.ts'));
    if (files.length !== 1) {
      throw new Error(`kubernetes-fluent-client produced ${files.length} files for ${target.crd} (expected 1)`);
    }
    const raw = readFileSync(join(work, files[0] as string), 'utf8');
    const processed = postProcess(raw, target.kind, target.crd);
    const prettierConfig = JSON.parse(readFileSync(join(root, '.prettierrc.json'), 'utf8')) as Record<string, unknown>;
    return await format(processed, { ...prettierConfig, parser: 'typescript' });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const target of targets) {
    const generated = await generate(target);
    const path = join(outDir, target.out);
    if (check) {
      if (!existsSync(path) || readFileSync(path, 'utf8') !== generated) stale.push(basename(path));
    } else {
      writeFileSync(path, generated);
      console.log(`wrote ${join('src/api/v1alpha1', target.out)}`);
    }
  }
  if (stale.length > 0) {
    console.error(`out of date: ${stale.join(', ')}; run \`npm run generate\` and commit the result`);
    process.exit(1);
  }
  if (check) console.log('generated API types are up to date');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}
