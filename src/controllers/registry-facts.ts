// Facts read from registries beyond a tag's digest, cached by digest (content addressed, so
// a cached answer never goes stale): the platform manifests of an index, and the bases an
// image declares. One read per new digest, however many resources ask; a failed read is
// not cached, so the next reconcile asks again.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { RegistryClient } from '../registry/client.ts';
import { Annotations, platformMatches } from '../registry/manifest.ts';
import type { ImageReference } from '../registry/reference.ts';
import { declaredBases, type DeclaredBase } from '../verify/provenance.ts';
import { PromiseCache } from './promise-cache.ts';

export class RegistryFacts {
  private readonly client: RegistryClient;
  private readonly platforms = new PromiseCache<Record<string, string>>({ max: 2_000 });
  private readonly bases = new PromiseCache<DeclaredBase[]>({ max: 2_000 });
  private readonly createdTimes = new PromiseCache<Date | undefined>({ max: 10_000 });

  constructor(client: RegistryClient) {
    this.client = client;
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
        const fetched = await this.client.manifest(
          { registry: ref.registry, repository: ref.repository, digest },
          source,
          signal,
        );
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
  created(
    ref: ImageReference,
    digest: string,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<Date | undefined> {
    return this.createdTimes.get(`${ref.registry}/${ref.repository}@${digest}|${source.id}`, async () => {
      const at = (d: string) => ({ registry: ref.registry, repository: ref.repository, digest: d });
      let fetched = await this.client.manifest(at(digest), source, signal);
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
      const created = config.created ? new Date(config.created) : undefined;
      return created && created.getTime() > 0 ? created : undefined;
    });
  }
}
