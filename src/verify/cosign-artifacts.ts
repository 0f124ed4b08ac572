// Reads what cosign stored about an image from its registry, in both schemes (no npm package
// does: @sigstore/oci only pushes): the legacy `sha256-<hex>.sig` / `.att` tags, and the OCI
// 1.1 referrers carrying Sigstore bundles (the referrers API, or its `sha256-<hex>` tag
// fallback on registries without it). Nothing read here is trusted until signatures.ts has
// verified it. Counts and sizes are bounded: a registry can hold anything.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import type { Descriptor } from '../registry/manifest.ts';
import type { ImageReference } from '../registry/reference.ts';
import { MediaTypes, SIGN_PREDICATE, type CosignArtifact } from './signatures.ts';

const BUNDLE_ARTIFACT_TYPE = /^application\/vnd\.dev\.sigstore\.bundle(\.v0\.\d+)?\+json/;
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
const MAX_LAYERS = 16;
const MAX_REFERRERS = 32;
const MAX_ARTIFACT_BYTES = 1024 * 1024;

/**
 * The layers of a legacy cosign tag of `digest`: `sha256-<hex>.sig` (signatures) or `.att`
 * (attestations); none when the tag does not exist.
 */
export async function legacyCosignLayers(
  client: RegistryClient,
  image: ImageReference,
  digest: string,
  kind: 'sig' | 'att',
  source: CredentialSource,
  signal?: AbortSignal,
): Promise<CosignArtifact[]> {
  const tag = `${digest.replace(':', '-')}.${kind}`;
  const mediaType = kind === 'sig' ? MediaTypes.simpleSigning : MediaTypes.dsse;
  let fetched;
  try {
    fetched = await client.manifest({ registry: image.registry, repository: image.repository, tag }, source, signal);
  } catch (err) {
    if (err instanceof RegistryError && err.code === 'NOT_FOUND') return [];
    throw err;
  }
  if (fetched.manifest.kind !== 'manifest') return [];
  const layers = fetched.manifest.layers.filter((l) => l.mediaType === mediaType).slice(0, MAX_LAYERS);
  return Promise.all(
    layers.map(async (layer, i): Promise<CosignArtifact> => {
      const payload = await blobOf(client, image, layer, source, signal);
      return {
        format: 'legacy',
        payload,
        mediaType,
        annotations: layer.annotations ?? {},
        from: `tag ${tag} layer ${i}`,
      };
    }),
  );
}

export async function blobOf(
  client: RegistryClient,
  image: ImageReference,
  d: Descriptor,
  source: CredentialSource,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (d.size > MAX_ARTIFACT_BYTES) {
    throw new RegistryError(
      'TOO_LARGE',
      image.registry,
      `${d.digest} is ${d.size} bytes (limit ${MAX_ARTIFACT_BYTES})`,
    );
  }
  return client.blob(image.registry, image.repository, d.digest, source, MAX_ARTIFACT_BYTES, signal);
}

export interface ReferrerBundle {
  artifact: CosignArtifact;
  /** The predicate type the artifact declares, when it does. */
  predicateType?: string;
}

/**
 * Whether a referrer bundle is a candidate image signature (cosign 3's sign predicate, or
 * none declared) or a candidate attestation (any other predicate, or none declared).
 */
export function bundlesFor(bundles: readonly ReferrerBundle[], purpose: 'sig' | 'att'): CosignArtifact[] {
  const signature = (b: ReferrerBundle) => b.predicateType === undefined || b.predicateType === SIGN_PREDICATE;
  return bundles
    .filter((b) => (purpose === 'sig' ? signature(b) : !signature(b) || b.predicateType === undefined))
    .map((b) => b.artifact);
}

/**
 * The Sigstore bundles among the referrers of a digest (`referrers`, as the registry listed
 * them), each with the predicate type it declares.
 */
export async function referrerBundles(
  client: RegistryClient,
  image: ImageReference,
  referrers: readonly Descriptor[],
  source: CredentialSource,
  signal?: AbortSignal,
): Promise<ReferrerBundle[]> {
  const bundles = referrers
    .filter((d) => d.artifactType !== undefined && BUNDLE_ARTIFACT_TYPE.test(d.artifactType))
    .slice(0, MAX_REFERRERS);
  const out = await Promise.all(
    bundles.map(async (d) => {
      const at = { registry: image.registry, repository: image.repository, digest: d.digest };
      const fetched = await client.manifest(at, source, signal);
      if (fetched.manifest.kind !== 'manifest' || fetched.manifest.layers.length !== 1) return undefined;
      const body = await blobOf(client, image, fetched.manifest.layers[0]!, source, signal);
      let bundle: unknown;
      try {
        bundle = JSON.parse(body.toString('utf8'));
      } catch {
        bundle = undefined; // reported by the verifier as "not a valid Sigstore bundle"
      }
      const predicateType =
        d.annotations?.[BUNDLE_PREDICATE_ANNOTATION] ?? fetched.manifest.annotations?.[BUNDLE_PREDICATE_ANNOTATION];
      return {
        artifact: { format: 'bundle', bundle, from: `referrer ${d.digest}` } satisfies CosignArtifact,
        ...(predicateType ? { predicateType } : {}),
      };
    }),
  );
  return out.filter((x) => x !== undefined);
}
