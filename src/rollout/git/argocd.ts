// Argo CD's parameter override file, `<source path>/.argocd-source-<application>.yaml`: Argo CD
// merges it into the Application's source when it renders, and Argo CD Image Updater writes the
// same file. Patchline writes it as a third target beside markers and kustomization files, so
// that an Argo CD Helm or kustomize app needs no markers:
//
//   kustomize:
//     images:
//       - registry.example/shop/web:1.4@sha256:…    (or alias=registry.example/shop/web:…)
//   helm:
//     parameters:
//       - name: image.repository
//         value: registry.example/shop/web
//         forcestring: true
//
// The file is a tool-owned document: other entries are kept, Patchline's entry is replaced or
// added, the file is written in Argo CD's shape (2-space indent), and nothing is written when it
// already says it. A pure function of the file's text.
import { isMap, isSeq, parseDocument, stringify, type Document } from 'yaml';
import { parseReference, repositoryName } from '../../registry/reference.ts';
import { valueFor, type ImageTarget, type ValueChange } from './edit.ts';

export interface ArgoCdOverride {
  application: string;
  /** The Application's source path ('.' for the repository root). */
  path: string;
  alias?: string;
  helm?: { image: string; tag?: string; digest?: string };
}

/** The override file of an Application, relative to the repository root. */
export function overrideFile(o: ArgoCdOverride): string {
  const dir = o.path.replace(/^\.\/?/, '').replace(/\/+$/, '');
  return `${dir ? `${dir}/` : ''}.argocd-source-${o.application}.yaml`;
}

function repositoryOfImage(image: string): string | undefined {
  try {
    return repositoryName(parseReference(image.replace(/^[^=]+=/, '')));
  } catch {
    return undefined;
  }
}

/** The Helm parameters of the target: name, tag (with the digest unless a digest parameter exists), digest. */
function helmParameters(target: ImageTarget, helm: NonNullable<ArgoCdOverride['helm']>): [string, string][] {
  const params: [string, string][] = [[helm.image, target.repository]];
  if (helm.tag)
    params.push([helm.tag, valueFor(target, helm.digest || target.format === 'Tag' ? 'tag' : 'tag@digest')]);
  if (helm.digest && target.format !== 'Tag') params.push([helm.digest, target.digest]);
  return params;
}

/** Sets each parameter in `helm.parameters` (kept sorted by name, as Argo CD Image Updater writes them). */
function setHelm(doc: Document, params: [string, string][]): [string, string, string][] {
  const changes: [string, string, string][] = [];
  const existing = doc.getIn(['helm', 'parameters']) ?? null;
  const list: { name: string; value: string; forcestring?: boolean }[] = isSeq(existing)
    ? (existing.toJSON() as { name: string; value: string; forcestring?: boolean }[])
    : [];
  for (const [name, value] of params) {
    const entry = list.find((p) => p.name === name);
    if (entry?.value === value) continue;
    changes.push([name, entry?.value ?? '', value]);
    if (entry) entry.value = value;
    else list.push({ name, value, forcestring: true });
  }
  if (changes.length > 0)
    doc.setIn(
      ['helm', 'parameters'],
      list.sort((a, b) => a.name.localeCompare(b.name)),
    );
  return changes;
}

/** Sets the kustomize images entry of the target's repository (by repository, or by alias). */
function setKustomize(doc: Document, target: ImageTarget, alias: string | undefined): [string, string, string][] {
  const repository = repositoryOfImage(target.repository);
  const value = `${alias ? `${alias}=` : ''}${valueFor(target, '')}`;
  const existing = doc.getIn(['kustomize', 'images']) ?? null;
  const images = isSeq(existing) ? (existing.toJSON() as string[]) : [];
  const index = images.findIndex((i) =>
    alias ? i.startsWith(`${alias}=`) : !i.includes('=') && repositoryOfImage(i) === repository,
  );
  if (images[index] === value) return [];
  const from = index >= 0 ? images[index]! : '';
  if (index >= 0) images[index] = value;
  else images.push(value);
  doc.setIn(['kustomize', 'images'], images);
  return [['kustomize.images', from, value]];
}

/**
 * The override file with the target's values, and what changed. A file that is not a YAML
 * mapping is left alone (a problem, not an overwrite).
 */
export function editOverride(
  text: string,
  target: ImageTarget,
  override: ArgoCdOverride,
): { text: string; changes: ValueChange[]; problems: string[] } {
  const file = overrideFile(override);
  const doc = parseDocument(text || '{}');
  if (doc.errors.length > 0 || (doc.contents !== null && !isMap(doc.contents))) {
    return { text, changes: [], problems: [`${file}: not a YAML mapping; left alone`] };
  }
  const edits = override.helm
    ? setHelm(doc, helmParameters(target, override.helm))
    : setKustomize(doc, target, override.alias);
  if (edits.length === 0) return { text, changes: [], problems: [] };
  const policy = `${target.policy.namespace}/${target.policy.name}`;
  return {
    text: stringify(doc.toJSON(), { indent: 2, indentSeq: false }),
    changes: edits.map(([key, from, to]) => ({
      policy,
      file,
      line: 0,
      from: from ? `${key}: ${from}` : '',
      to: `${key}: ${to}`,
    })),
    problems: [],
  };
}
