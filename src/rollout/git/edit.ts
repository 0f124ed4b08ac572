// Edits the image values of files in a GitOps repository, changing only the bytes of the values
// it rewrites: comments, anchors, quoting, indentation, block scalars, blank lines and line
// endings stay as they were (re-serialising a file is the first complaint about Flux's and Argo
// CD's write-back). What is edited:
//
//   - scalars marked with a comment naming an ImagePolicy, on their line or on the line above:
//       image: ghcr.io/org/app:1.0 # {"$imagepolicy": "shop:web"}     Flux's marker, read as Flux reads it
//       image: ghcr.io/org/app:1.0 # {"$patchline": "shop:web"}       Patchline's own
//     with the suffixes `:name` (repository), `:tag` (the tag), `:digest` (the digest) and
//     `:tag@digest`; without a suffix, the whole reference in the policy's format;
//   - Kustomize `images:` entries (kustomization.yaml, kustomization.yml, Kustomization) whose
//     image (newName, else name) is a followed repository: `newTag` and `digest`.
//
// A pure function of a file's text: the write-back reads and writes the files.
import { isMap, isScalar, isSeq, parseAllDocuments, type Document, type Scalar, type YAMLMap } from 'yaml';
import { parseReference, repositoryName } from '../../registry/reference.ts';

/** How a whole reference is written: `repo:tag@sha256:…` (default), `repo@sha256:…`, or `repo:tag` only. */
export type ImageFormat = 'TagAndDigest' | 'Digest' | 'Tag';

/** What one ImagePolicy wants the files to say. */
export interface ImageTarget {
  policy: { namespace: string; name: string };
  /** The repository as followed (spec.image), without tag or digest. */
  repository: string;
  tag?: string;
  digest: string;
  format: ImageFormat;
}

export interface ValueChange {
  policy: string;
  file: string;
  line: number;
  from: string;
  to: string;
}

export interface EditResult {
  text: string;
  changes: ValueChange[];
  /** Policies this file names (a marker or an images entry), whether or not a value changed. */
  found: string[];
  /** Markers and entries that could not be edited (an unknown policy, a conflict). */
  problems: string[];
}

const KUSTOMIZATION = /(^|\/)(kustomization\.ya?ml|Kustomization)$/;
const MARKER_KEYS = ['$imagepolicy', '$patchline'] as const;
type Suffix = '' | 'name' | 'tag' | 'digest' | 'tag@digest';
const SUFFIXES: readonly Suffix[] = ['name', 'tag', 'digest', 'tag@digest'];

/** Only files that may hold something to edit are parsed: YAML files and Kustomization. */
export function mayEdit(path: string): boolean {
  return /\.ya?ml$/.test(path) || /(^|\/)Kustomization$/.test(path);
}

/** The value a marker with this suffix stands for. */
export function valueFor(target: ImageTarget, suffix: Suffix): string {
  switch (suffix) {
    case 'name':
      return target.repository;
    case 'tag':
      return target.tag ?? '';
    case 'digest':
      return target.digest;
    case 'tag@digest':
      return target.tag ? `${target.tag}@${target.digest}` : target.digest;
    default:
      if (target.format === 'Tag' && target.tag) return `${target.repository}:${target.tag}`;
      if (target.format === 'Digest' || !target.tag) return `${target.repository}@${target.digest}`;
      return `${target.repository}:${target.tag}@${target.digest}`;
  }
}

/** A marker comment's policy and suffix: `{"$imagepolicy": "ns:name[:suffix]"}`; undefined when it is none. */
export function readMarker(comment: string): { namespace: string; name: string; suffix: Suffix } | undefined {
  const text = comment.replace(/^\s*#+/, '').trim();
  if (!text.startsWith('{')) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const value = MARKER_KEYS.map((k) => (json as Record<string, unknown>)[k]).find((v) => typeof v === 'string');
  if (typeof value !== 'string') return undefined;
  const [namespace, name, ...rest] = value.split(':');
  const suffix = rest.join(':') as Suffix;
  if (!namespace || !name || (suffix !== '' && !SUFFIXES.includes(suffix))) return undefined;
  return { namespace, name, suffix };
}

interface Replacement {
  start: number;
  end: number;
  text: string;
  change: ValueChange;
}

/** Where lines start, to turn offsets into line numbers and to find a line's neighbours. */
class Lines {
  private readonly starts: number[] = [0];
  readonly text: string;

  constructor(text: string) {
    this.text = text;
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.starts.push(i + 1);
  }

  /** 0-based line of an offset. */
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  line(n: number): string {
    const start = this.starts[n] ?? this.text.length;
    const next = this.starts[n + 1];
    return this.text.slice(start, next === undefined ? undefined : next - 1).replace(/\r$/, '');
  }

  /** The end of the line holding `offset`, before its line break. */
  endOfLine(offset: number): number {
    const nl = this.text.indexOf('\n', offset);
    if (nl === -1) return this.text.length;
    return this.text[nl - 1] === '\r' ? nl - 1 : nl;
  }

  get newline(): string {
    return this.text.includes('\r\n') ? '\r\n' : '\n';
  }
}

/** A scalar written back in the style it was read in (plain, single or double quoted). */
function styled(node: Scalar, value: string): string {
  if (node.type === 'QUOTE_DOUBLE') return JSON.stringify(value);
  if (node.type === 'QUOTE_SINGLE') return `'${value.replace(/'/g, "''")}'`;
  return value;
}

const policyKey = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`;

/** The comment that marks a scalar: after it on its line, or alone on the line above. */
function markerOf(lines: Lines, node: Scalar): ReturnType<typeof readMarker> {
  const [start, end] = node.range ?? [0, 0];
  const rest = lines.text.slice(end, lines.endOfLine(end));
  const trailing = /^\s*(#.*)$/.exec(rest);
  if (trailing) {
    const marker = readMarker(trailing[1]!);
    if (marker) return marker;
  }
  const above = lines.lineOf(start) - 1;
  if (above < 0) return undefined;
  const head = /^\s*(#.*)$/.exec(lines.line(above));
  return head ? readMarker(head[1]!) : undefined;
}

function* scalarsOf(node: unknown): Generator<Scalar> {
  if (isScalar(node)) yield node;
  else if (isMap(node)) for (const pair of node.items) yield* scalarsOf(pair.value);
  else if (isSeq(node)) for (const item of node.items) yield* scalarsOf(item);
}

/** Replacements for marked scalars. */
function markedValues(file: string, docs: Document[], lines: Lines, targets: ReadonlyMap<string, ImageTarget>) {
  const out: Replacement[] = [];
  const problems: string[] = [];
  const found = new Set<string>();
  for (const doc of docs) {
    for (const node of scalarsOf(doc.contents)) {
      if (node.type !== 'PLAIN' && node.type !== 'QUOTE_DOUBLE' && node.type !== 'QUOTE_SINGLE') continue;
      const marker = markerOf(lines, node);
      if (!marker) continue;
      const target = targets.get(policyKey(marker));
      if (!target) continue; // another tool's policy, or one not written by this write-back
      found.add(policyKey(target.policy));
      const value = valueFor(target, marker.suffix);
      const [start, end] = node.range!;
      if (!value) {
        problems.push(`${file}:${lines.lineOf(start) + 1}: ${policyKey(marker)} has no tag to write`);
        continue;
      }
      if ((textOf(node) ?? '') === value) continue;
      out.push({
        start,
        end,
        text: styled(node, value),
        change: {
          policy: policyKey(target.policy),
          file,
          line: lines.lineOf(start) + 1,
          from: textOf(node) ?? '',
          to: value,
        },
      });
    }
  }
  return { replacements: out, problems, found };
}

function normalRepository(image: string): string | undefined {
  try {
    return repositoryName(parseReference(image));
  } catch {
    return undefined;
  }
}

/** A scalar's value as text; undefined when absent or not a string or number. */
function textOf(node: Scalar | undefined): string | undefined {
  const v = node?.value;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/** The scalar of `key` in a map, if it is a plain or quoted scalar. */
function scalarAt(map: YAMLMap, key: string): Scalar | undefined {
  const value = map.get(key, true);
  return isScalar(value) ? value : undefined;
}

/** Replacements and insertions for one Kustomize `images:` entry. */
function kustomizeEntry(
  file: string,
  entry: YAMLMap,
  lines: Lines,
  target: ImageTarget,
): { replacements: Replacement[] } {
  const out: Replacement[] = [];
  const policy = policyKey(target.policy);
  const wanted: [string, string | undefined][] = [
    ['newTag', target.tag],
    ['digest', target.format === 'Tag' ? undefined : target.digest],
  ];
  for (const [key, value] of wanted) {
    const node = scalarAt(entry, key);
    if (value === undefined) {
      if (node && key === 'digest') out.push(removePair(file, entry, key, lines, policy));
      continue;
    }
    if (node) {
      if (textOf(node) === value) continue;
      const [start, end] = node.range!;
      out.push({
        start,
        end,
        text: styled(node, value),
        change: { policy, file, line: lines.lineOf(start) + 1, from: textOf(node) ?? '', to: value },
      });
    } else {
      out.push(insertPair(file, entry, key, value, lines, policy));
    }
  }
  return { replacements: out };
}

/** Adds `key: value` to an entry: a line at the entry's indentation, or inside its braces. */
function insertPair(
  file: string,
  entry: YAMLMap,
  key: string,
  value: string,
  lines: Lines,
  policy: string,
): Replacement {
  const [start, end] = entry.range!;
  const change = { policy, file, line: lines.lineOf(start) + 1, from: '', to: `${key}: ${value}` };
  if (entry.flow) {
    const brace = lines.text.lastIndexOf('}', end);
    return { start: brace, end: brace, text: `, ${key}: ${value}`, change };
  }
  const firstKey = entry.items[0]?.key;
  const keyStart = isScalar(firstKey) ? firstKey.range![0] : start;
  const indent = ' '.repeat(keyStart - (lines.text.lastIndexOf('\n', keyStart - 1) + 1));
  const last = entry.items[entry.items.length - 1]!;
  const lastEnd = (isScalar(last.value) ? last.value.range![1] : isScalar(last.key) ? last.key.range![1] : end) ?? end;
  const at = lines.endOfLine(lastEnd);
  const text = `${lines.newline}${indent}${key}: ${value}`;
  return { start: at, end: at, text, change: { ...change, line: lines.lineOf(at) + 2 } };
}

/** Removes a `key: value` line of a block entry (a digest that must go for a tag-only format). */
function removePair(file: string, entry: YAMLMap, key: string, lines: Lines, policy: string): Replacement {
  const node = scalarAt(entry, key)!;
  const line = lines.lineOf(node.range![0]);
  const lineStart = lines.text.lastIndexOf('\n', node.range![0] - 1) + 1;
  const lineEnd = lines.endOfLine(node.range![0]);
  const breakLength = lines.text.startsWith('\r\n', lineEnd) ? 2 : lines.text[lineEnd] === '\n' ? 1 : 0;
  return {
    start: lineStart,
    end: lineEnd + breakLength,
    text: '',
    change: { policy, file, line: line + 1, from: `${key}: ${textOf(node) ?? ''}`, to: '' },
  };
}

/** Replacements for a kustomization's `images:` entries naming a followed repository. */
function kustomizeImages(file: string, docs: Document[], lines: Lines, targets: readonly ImageTarget[]) {
  const out: Replacement[] = [];
  const problems: string[] = [];
  const found = new Set<string>();
  const byRepository = new Map<string, ImageTarget[]>();
  for (const t of targets) {
    const repo = normalRepository(t.repository);
    if (repo) byRepository.set(repo, [...(byRepository.get(repo) ?? []), t]);
  }
  for (const doc of docs) {
    if (!isMap(doc.contents)) continue;
    const images = doc.contents.get('images', true);
    if (!isSeq(images)) continue;
    for (const entry of images.items) {
      if (!isMap(entry)) continue;
      const image = textOf(scalarAt(entry, 'newName')) ?? textOf(scalarAt(entry, 'name')) ?? '';
      const repo = normalRepository(image);
      const matching = repo ? (byRepository.get(repo) ?? []) : [];
      if (matching.length === 0) continue;
      const digests = new Set(matching.map((t) => `${t.tag ?? ''}@${t.digest}`));
      if (digests.size > 1) {
        const names = matching.map((t) => policyKey(t.policy)).join(', ');
        problems.push(`${file}: images entry ${image} is followed by ${names} with different digests; left alone`);
        continue;
      }
      found.add(policyKey(matching[0]!.policy));
      out.push(...kustomizeEntry(file, entry, lines, matching[0]!).replacements);
    }
  }
  return { replacements: out, problems, found };
}

/**
 * The file with every image value of the targets written, and what changed. A file that is not
 * YAML, or holds nothing to edit, comes back unchanged.
 */
export function editFile(file: string, text: string, targets: readonly ImageTarget[]): EditResult {
  const unchanged: EditResult = { text, changes: [], found: [], problems: [] };
  const isKustomization = KUSTOMIZATION.test(file);
  const hasMarker = MARKER_KEYS.some((k) => text.includes(`"${k}"`));
  if (!mayEdit(file) || (!isKustomization && !hasMarker) || targets.length === 0) return unchanged;
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) {
    return { ...unchanged, problems: [`${file}: not valid YAML; left alone`] };
  }
  const lines = new Lines(text);
  const byPolicy = new Map(targets.map((t) => [policyKey(t.policy), t]));
  const none = { replacements: [] as Replacement[], problems: [] as string[], found: new Set<string>() };
  const marked = hasMarker ? markedValues(file, docs, lines, byPolicy) : none;
  const kustomize = isKustomization ? kustomizeImages(file, docs, lines, targets) : none;
  // A marked value inside an images entry is edited once, by its marker.
  const taken = new Set(marked.replacements.map((r) => r.start));
  const replacements = [...marked.replacements, ...kustomize.replacements.filter((r) => !taken.has(r.start))].sort(
    (a, b) => b.start - a.start,
  );
  let out = text;
  for (const r of replacements) out = out.slice(0, r.start) + r.text + out.slice(r.end);
  return {
    text: out,
    changes: replacements.map((r) => r.change).sort((a, b) => a.line - b.line),
    found: [...new Set([...marked.found, ...kustomize.found])].sort(),
    problems: [...marked.problems, ...kustomize.problems],
  };
}
