// What an image declares it was built on, and whether that is the expected base.
//
// Two sources, read from the registry:
//   - the OCI annotations org.opencontainers.image.base.digest (and .base.name), on the
//     manifest, the index, or the index's platform manifests (buildah, ko, the .NET SDK and
//     Docker Official Images set them);
//   - BuildKit provenance attestations: an index entry marked
//     vnd.docker.reference.type=attestation-manifest whose layers are in-toto statements with
//     SLSA predicates listing the images used (v0.2 `materials`, v1
//     `buildDefinition.resolvedDependencies`), as {uri: "pkg:docker/<name>@<tag>", digest: {sha256}}.
// The number of manifests and blobs read is bounded.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { RegistryClient } from '../registry/client.ts';
import { Annotations, type Descriptor, type Manifest } from '../registry/manifest.ts';
import type { ImageReference } from '../registry/reference.ts';

export interface DeclaredBase {
  digest: string;
  name?: string;
  source: 'annotation' | 'attestation';
}

export type ProvenanceVerdict = 'Verified' | 'Mismatch' | 'Unknown';

export interface ProvenanceResult {
  verdict: ProvenanceVerdict;
  /** The declared base that matched, or the first one declared. */
  declared?: DeclaredBase;
  message: string;
}

const IN_TOTO = 'application/vnd.in-toto+json';
const MAX_CHILDREN = 4;
const MAX_STATEMENT_BYTES = 4 * 1024 * 1024;

function fromAnnotations(annotations: Record<string, string> | undefined): DeclaredBase[] {
  const digest = annotations?.[Annotations.baseDigest];
  if (!digest) return [];
  const name = annotations[Annotations.baseName];
  return [{ digest, source: 'annotation', ...(name ? { name } : {}) }];
}

/** The images a SLSA provenance statement lists as used (v0.2 materials, v1 resolvedDependencies). */
export function materialsOf(statement: unknown): DeclaredBase[] {
  if (typeof statement !== 'object' || statement === null) return [];
  const predicate = (statement as { predicate?: unknown }).predicate;
  if (typeof predicate !== 'object' || predicate === null) return [];
  const p = predicate as { materials?: unknown; buildDefinition?: { resolvedDependencies?: unknown } };
  const lists = [p.materials, p.buildDefinition?.resolvedDependencies].filter(Array.isArray) as unknown[][];
  const out: DeclaredBase[] = [];
  for (const list of lists) {
    for (const item of list) {
      if (typeof item !== 'object' || item === null) continue;
      const { uri, digest } = item as { uri?: unknown; digest?: { sha256?: unknown } };
      if (typeof uri !== 'string' || !uri.startsWith('pkg:docker/')) continue;
      const hex = digest?.sha256;
      if (typeof hex !== 'string' || !/^[a-f0-9]{64}$/.test(hex)) continue;
      const name = decodeURIComponent(uri.slice('pkg:docker/'.length).split('?')[0]!.split('@')[0]!);
      out.push({ digest: `sha256:${hex}`, name, source: 'attestation' });
    }
  }
  return out;
}

/** Reads every base an image (by digest) declares. */
export async function declaredBases(
  client: RegistryClient,
  image: ImageReference,
  digest: string,
  source: CredentialSource,
  signal?: AbortSignal,
): Promise<DeclaredBase[]> {
  const at = (d: string): ImageReference => ({ registry: image.registry, repository: image.repository, digest: d });
  const top = await client.manifest(at(digest), source, signal);
  const found = fromAnnotations(top.manifest.annotations);
  if (top.manifest.kind !== 'index') return found;
  const entries: Descriptor[] = top.manifest.manifests;
  const attestations = entries
    .filter((d) => d.annotations?.[Annotations.referenceType] === 'attestation-manifest')
    .slice(0, MAX_CHILDREN);
  const images = entries
    .filter((d) => d.annotations?.[Annotations.referenceType] !== 'attestation-manifest')
    .slice(0, MAX_CHILDREN);
  if (found.length === 0) {
    for (const child of images) {
      const m: Manifest = (await client.manifest(at(child.digest), source, signal)).manifest;
      found.push(...fromAnnotations(m.annotations));
      if (found.length > 0) break;
    }
  }
  for (const att of attestations) {
    const m = (await client.manifest(at(att.digest), source, signal)).manifest;
    if (m.kind !== 'manifest') continue;
    for (const layer of m.layers.filter((l) => l.mediaType === IN_TOTO && l.size <= MAX_STATEMENT_BYTES)) {
      const predicateType = layer.annotations?.['in-toto.io/predicate-type'] ?? '';
      if (predicateType && !predicateType.includes('slsa.dev/provenance')) continue;
      const blob = await client.blob(
        image.registry,
        image.repository,
        layer.digest,
        source,
        MAX_STATEMENT_BYTES,
        signal,
      );
      try {
        found.push(...materialsOf(JSON.parse(blob.toString('utf8'))));
      } catch {
        // an unreadable statement declares nothing
      }
    }
  }
  return found;
}

/**
 * Judges the declared bases against the digests the base should have (its index digest and
 * its platform digests). Annotations name the final stage's base precisely: one that does
 * not match is a mismatch. Attestations list every image the build used: a mismatch is only
 * claimed when one of them is the base's repository at another digest.
 */
export function judge(
  declared: DeclaredBase[],
  expected: { repositories: string[]; digests: string[] },
): ProvenanceResult {
  const match = declared.find((d) => expected.digests.includes(d.digest));
  if (match) return { verdict: 'Verified', declared: match, message: `built on ${match.digest} (${match.source})` };
  const annotated = declared.find((d) => d.source === 'annotation');
  if (annotated) {
    return {
      verdict: 'Mismatch',
      declared: annotated,
      message: `declares base ${annotated.digest}${annotated.name ? ` (${annotated.name})` : ''}, not the current base digest`,
    };
  }
  const sameRepository = declared.find(
    (d) => d.name !== undefined && expected.repositories.some((r) => r.endsWith(d.name!) || d.name!.endsWith(r)),
  );
  if (sameRepository) {
    return {
      verdict: 'Mismatch',
      declared: sameRepository,
      message: `its provenance lists ${sameRepository.name}@${sameRepository.digest}, not the current base digest`,
    };
  }
  return {
    verdict: 'Unknown',
    message: 'the image declares no base (no base-digest annotation, no provenance attestation naming the base)',
  };
}
