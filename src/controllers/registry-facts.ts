// Facts read from registries beyond a tag's digest, cached by digest (content addressed, so
// a cached answer never goes stale): whether the registry serves the digest's manifest, the
// platform manifests of an index, the bases an image declares, its build time. One read per
// new digest, however many resources ask; a failed read is not cached, so the next reconcile
// asks again.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { FetchedManifest, RegistryClient } from '../registry/client.ts';
import { DigestMismatchError, isRegistryError } from '../registry/errors.ts';
import { Annotations, platformMatches } from '../registry/manifest.ts';
import type { ImageReference } from '../registry/reference.ts';
import { shortDigest } from '../registry/reference.ts';
import type { ServedManifest } from '../verify/checks.ts';
import { declaredBases, type DeclaredBase } from '../verify/provenance.ts';
import { PromiseCache } from './promise-cache.ts';

interface ConfigFacts {
  created?: string;
  user?: string;
}

/** A refusal (no such manifest, content that does not hash to it) is asked again after this long. */
const REFUSAL_TTL_MS = 60_000;

export class RegistryFacts {
  private readonly client: RegistryClient;
  private readonly platforms = new PromiseCache<Record<string, string>>({ max: 2_000 });
  private readonly bases = new PromiseCache<DeclaredBase[]>({ max: 2_000 });
  /** Of each image config, only what the checks read: held for 10,000 digests. */
  private readonly configs = new PromiseCache<ConfigFacts | undefined>({ max: 10_000 });
  private readonly served = new PromiseCache<ServedManifest>({
    max: 10_000,
    ttlMs: (verdict) => (verdict.matches ? Infinity : REFUSAL_TTL_MS),
  });
  /**
   * Manifests just read, so that the facts asked about one new digest in one reconcile (served,
   * created, platforms) cost one GET. Small: a manifest is only read once per digest anyway.
   */
  private readonly manifests = new PromiseCache<FetchedManifest>({ max: 64 });

  constructor(client: RegistryClient) {
    this.client = client;
  }

  /** The manifest at `digest`, verified against it by the client (it hashes to the digest). */
  private manifest(
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<FetchedManifest> {
    return this.manifests.get(`${ref.registry}/${ref.repository}@${digest}|${source.id}`, () =>
      this.client.manifest({ registry: ref.registry, repository: ref.repository, digest }, source, signal),
    );
  }

  /**
   * Whether the registry serves a manifest for `digest` in the repository, and its content
   * hashes to the digest: the candidate digest (from a tag's HEAD, or from a RebuildTrigger's
   * status) is what the repository really holds. Unreachable registries throw (the check
   * cannot be judged yet); a missing manifest or a mismatch is a verdict, asked again after a
   * minute, or at once when `fresh` (a requested reconcile).
   */
  servedManifest(
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal?: AbortSignal,
    fresh = false,
  ): Promise<ServedManifest> {
    const repository = `${ref.registry}/${ref.repository}`;
    return this.served.get(
      `${repository}@${digest}|${source.id}`,
      async () => {
        try {
          await this.manifest(ref, digest, source, signal);
          return { matches: true, message: `${repository} serves ${shortDigest(digest)}, its manifest hashes to it` };
        } catch (err) {
          if (err instanceof DigestMismatchError)
            return {
              matches: false,
              message: `the manifest ${repository} serves for ${digest} hashes to ${err.computed}: the registry, a proxy or a cache altered it`,
            };
          if (isRegistryError(err, 'NOT_FOUND'))
            return { matches: false, message: `${repository} has no manifest ${digest}` };
          throw err;
        }
      },
      fresh,
    );
  }

  /**
   * The digest of each wanted platform's manifest in the image at `digest`. A single-platform
   * image stands for every wanted platform with its own digest.
   */
  platformDigests(
    ref: ImageReference,
    digest: string,
    wanted: string[],
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<Record<string, string>> {
    return this.platforms.get(
      `${ref.registry}/${ref.repository}@${digest}|${wanted.join(',')}|${source.id}`,
      async () => {
        const fetched = await this.manifest(ref, digest, source, signal);
        const out: Record<string, string> = {};
        for (const w of wanted) {
          if (fetched.manifest.kind !== 'index') out[w] = digest;
          else {
            const child = fetched.manifest.manifests.find((m) => m.platform && platformMatches(m.platform, w));
            if (child) out[w] = child.digest;
          }
        }
        return out;
      },
    );
  }

  /** The bases the image at `digest` declares (annotations, provenance attestations). */
  declaredBases(
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<DeclaredBase[]> {
    return this.bases.get(`${ref.registry}/${ref.repository}@${digest}|${source.id}`, () =>
      declaredBases(this.client, ref, digest, source, signal),
    );
  }

  /**
   * When the image at `digest` was built: its config's created time. For an index, the
   * linux/amd64 image's (or else the first platform's); attestation entries are skipped.
   * Undefined when the config has none (reproducible builds often set the epoch: also none).
   */
  async created(
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<Date | undefined> {
    const created = (await this.config(ref, digest, source, signal))?.created;
    const at = created ? new Date(created) : undefined;
    return at && at.getTime() > 0 ? at : undefined;
  }

  /** Who the image at `digest` runs as: its config's User (for an index, as for created()). */
  async user(ref: ImageReference, digest: string, source: CredentialSource, signal?: AbortSignal): Promise<string> {
    return (await this.config(ref, digest, source, signal))?.user ?? '';
  }

  /** The image config of the image at `digest` (an index's linux/amd64 image, or its first); cached by digest. */
  private config(
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<ConfigFacts | undefined> {
    return this.configs.get(`${ref.registry}/${ref.repository}@${digest}|${source.id}`, async () => {
      const at = (d: string) => ({ registry: ref.registry, repository: ref.repository, digest: d });
      let fetched = await this.manifest(ref, digest, source, signal);
      if (fetched.manifest.kind === 'index') {
        const images = fetched.manifest.manifests.filter(
          (m) => m.platform && m.platform.os !== 'unknown' && m.annotations?.[Annotations.referenceType] === undefined,
        );
        const chosen = images.find((m) => m.platform && platformMatches(m.platform, 'linux/amd64')) ?? images[0];
        if (!chosen) return undefined;
        fetched = await this.client.manifest(at(chosen.digest), source, signal);
        if (fetched.manifest.kind === 'index') return undefined;
      }
      const config = await this.client.config(ref.registry, ref.repository, fetched.manifest, source, signal);
      return {
        ...(config.created !== undefined ? { created: config.created } : {}),
        ...(config.user !== undefined ? { user: config.user } : {}),
      };
    });
  }
}
