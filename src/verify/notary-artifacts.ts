// Reads Notary Project signatures from a registry: the referrers of a digest whose artifact type
// is application/vnd.cncf.notary.signature, each a manifest with one layer holding a JWS or
// COSE envelope (what `notation sign` pushes). Nothing read here is trusted until notary.ts has
// verified it. Counts and sizes are bounded, as for cosign's artefacts.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { RegistryClient } from '../registry/client.ts';
import type { Descriptor } from '../registry/manifest.ts';
import type { ImageReference } from '../registry/reference.ts';
import { blobOf } from './cosign-artifacts.ts';
import { NotaryMediaTypes } from './notary-envelope.ts';
import type { NotarySignatureBlob } from './notary.ts';

const MAX_SIGNATURES = 16;
const ENVELOPE_TYPES: ReadonlySet<string> = new Set([NotaryMediaTypes.jws, NotaryMediaTypes.cose]);

/** The Notary signature envelopes among the referrers of a digest (newest first where dated). */
export async function notarySignatureBlobs(
  client: RegistryClient,
  image: ImageReference,
  referrers: readonly Descriptor[],
  source: CredentialSource,
  signal?: AbortSignal,
): Promise<NotarySignatureBlob[]> {
  const created = (d: Descriptor) => d.annotations?.['org.opencontainers.image.created'] ?? '';
  const signatures = referrers
    .filter((d) => d.artifactType === NotaryMediaTypes.signature)
    .sort((a, b) => created(b).localeCompare(created(a)))
    .slice(0, MAX_SIGNATURES);
  const out = await Promise.all(
    signatures.map(async (d): Promise<NotarySignatureBlob | undefined> => {
      const at = { registry: image.registry, repository: image.repository, digest: d.digest };
      const fetched = await client.manifest(at, source, signal);
      if (fetched.manifest.kind !== 'manifest') return undefined;
      const layer = fetched.manifest.layers.find((l) => ENVELOPE_TYPES.has(l.mediaType));
      if (!layer) return undefined;
      const envelope = await blobOf(client, image, layer, source, signal);
      return { mediaType: layer.mediaType, envelope, from: `referrer ${d.digest}` };
    }),
  );
  return out.filter((x) => x !== undefined);
}
