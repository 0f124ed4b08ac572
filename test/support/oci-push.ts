// Pushes test images to a registry with the distribution API (blob uploads, manifest PUTs),
// authenticating as a docker client does (basic, or a bearer token from the realm).
// Single- and multi-platform images, annotations, labels, created times, and artifacts with
// a subject (for referrers) are made here, at test time.
import { createHash, randomBytes } from 'node:crypto';
import { fetch, type Dispatcher } from 'undici';
import { parseChallenges } from '../../src/registry/auth/challenge.ts';
import { MediaTypes, type Descriptor } from '../../src/registry/manifest.ts';

export interface PushAuth {
  username: string;
  password: string;
}

export interface ImageSpec {
  /** os/arch[/variant]; one platform makes a plain manifest, several an index. Default linux/amd64. */
  platforms?: string[];
  created?: string;
  labels?: Record<string, string>;
  /** Annotations on every manifest (and the index). */
  annotations?: Record<string, string>;
  /** Makes the content (and so the digests) differ from other pushes. */
  seed?: string;
  /** config.User: who the image runs as (absent: root). */
  user?: string;
}

export interface PushedImage {
  digest: string;
  mediaType: string;
  children: { platform: string; digest: string }[];
}

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export class OciPusher {
  readonly url: string;
  private readonly auth: PushAuth | undefined;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly tokens = new Map<string, string>();
  requests = 0;

  constructor(registryUrl: string, auth?: PushAuth, dispatcher?: Dispatcher) {
    this.url = registryUrl.replace(/\/$/, '');
    this.auth = auth;
    this.dispatcher = dispatcher;
  }

  private async request(
    method: string,
    repository: string,
    pathOrUrl: string,
    init: { headers?: Record<string, string>; body?: Buffer | string } = {},
  ): Promise<Awaited<ReturnType<typeof fetch>>> {
    const target = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.url}${pathOrUrl}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers: Record<string, string> = { ...init.headers };
      const token = this.tokens.get(repository);
      if (token) headers.authorization = token;
      this.requests++;
      const res = await fetch(target, {
        method,
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      });
      if (res.status !== 401 || attempt > 0) return res;
      await res.arrayBuffer();
      const challenge = parseChallenges(res.headers.get('www-authenticate') ?? '')[0];
      if (!challenge || !this.auth) return res;
      const basic = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
      if (challenge.scheme === 'basic') {
        this.tokens.set(repository, basic);
        continue;
      }
      const realm = new URL(challenge.params.realm!);
      if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
      realm.searchParams.set('scope', `repository:${repository}:pull,push,delete`);
      const t = await fetch(realm, {
        headers: { authorization: basic },
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      });
      const body = (await t.json()) as { token?: string };
      if (!body.token) throw new Error(`no push token for ${repository}`);
      this.tokens.set(repository, `Bearer ${body.token}`);
    }
    throw new Error('unreachable');
  }

  async pushBlob(repository: string, content: Buffer): Promise<string> {
    const digest = sha256(content);
    const head = await this.request('HEAD', repository, `/v2/${repository}/blobs/${digest}`);
    if (head.status === 200) return digest;
    const start = await this.request('POST', repository, `/v2/${repository}/blobs/uploads/`);
    if (start.status !== 202) throw new Error(`upload start ${repository}: HTTP ${start.status} ${await start.text()}`);
    const location = new URL(start.headers.get('location')!, this.url);
    location.searchParams.set('digest', digest);
    const put = await this.request('PUT', repository, location.toString(), {
      headers: { 'content-type': 'application/octet-stream' },
      body: content,
    });
    if (put.status !== 201) throw new Error(`upload ${repository}: HTTP ${put.status} ${await put.text()}`);
    return digest;
  }

  async putManifest(repository: string, reference: string, manifest: object, mediaType: string): Promise<string> {
    const body = JSON.stringify(manifest);
    const res = await this.request('PUT', repository, `/v2/${repository}/manifests/${reference}`, {
      headers: { 'content-type': mediaType },
      body,
    });
    if (res.status !== 201)
      throw new Error(`manifest ${repository}:${reference}: HTTP ${res.status} ${await res.text()}`);
    return sha256(body);
  }

  /** Tags an existing manifest under another tag, as a build pushing a known image would. */
  async copyManifest(repository: string, from: string, to: string, mediaType: string): Promise<string> {
    const res = await this.request('GET', repository, `/v2/${repository}/manifests/${from}`, {
      headers: { accept: mediaType },
    });
    if (!res.ok) throw new Error(`manifest ${repository}:${from}: HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    const put = await this.request('PUT', repository, `/v2/${repository}/manifests/${to}`, {
      headers: { 'content-type': mediaType },
      body,
    });
    if (!put.ok) throw new Error(`manifest ${repository}:${to}: HTTP ${put.status} ${await put.text()}`);
    return sha256(body);
  }

  /** The size in bytes of a stored manifest (for a descriptor that points at it). */
  async manifestSize(repository: string, reference: string): Promise<number> {
    const res = await this.request('GET', repository, `/v2/${repository}/manifests/${reference}`, {
      headers: { accept: [MediaTypes.ociManifest, MediaTypes.ociIndex].join(', ') },
    });
    if (!res.ok) throw new Error(`manifest ${repository}:${reference}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer()).length;
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    const res = await this.request('DELETE', repository, `/v2/${repository}/manifests/${digest}`);
    if (res.status !== 202) throw new Error(`delete ${repository}@${digest}: HTTP ${res.status} ${await res.text()}`);
  }

  /** Pushes an image; returns its digest (the index digest when multi-platform). */
  async pushImage(repository: string, tag: string | undefined, spec: ImageSpec = {}): Promise<PushedImage> {
    const platforms = spec.platforms ?? ['linux/amd64'];
    const seed = spec.seed ?? randomBytes(8).toString('hex');
    const children: { platform: string; digest: string; descriptor: Descriptor }[] = [];
    for (const platform of platforms) {
      const [os, architecture, variant] = platform.split('/') as [string, string, string | undefined];
      const layer = Buffer.from(`layer ${seed} ${platform}`);
      const layerDigest = await this.pushBlob(repository, layer);
      const config = Buffer.from(
        JSON.stringify({
          created: spec.created ?? new Date().toISOString(),
          architecture,
          os,
          ...(variant ? { variant } : {}),
          config: { Labels: spec.labels ?? {}, ...(spec.user !== undefined ? { User: spec.user } : {}) },
          rootfs: { type: 'layers', diff_ids: [layerDigest] },
        }),
      );
      const configDigest = await this.pushBlob(repository, config);
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
        ...(spec.annotations ? { annotations: spec.annotations } : {}),
      };
      const body = JSON.stringify(manifest);
      const reference = platforms.length === 1 && tag ? tag : sha256(body);
      const digest = await this.putManifest(repository, reference, manifest, MediaTypes.ociManifest);
      children.push({
        platform,
        digest,
        descriptor: {
          mediaType: MediaTypes.ociManifest,
          digest,
          size: Buffer.byteLength(body),
          platform: { os, architecture, ...(variant ? { variant } : {}) },
        },
      });
    }
    if (platforms.length === 1) {
      return {
        digest: children[0]!.digest,
        mediaType: MediaTypes.ociManifest,
        children: [{ platform: platforms[0]!, digest: children[0]!.digest }],
      };
    }
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: children.map((c) => c.descriptor),
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    };
    const indexDigest = sha256(JSON.stringify(index));
    await this.putManifest(repository, tag ?? indexDigest, index, MediaTypes.ociIndex);
    return {
      digest: indexDigest,
      mediaType: MediaTypes.ociIndex,
      children: children.map((c) => ({ platform: c.platform, digest: c.digest })),
    };
  }

  /**
   * Pushes an artifact that refers to `subject` (a signature, an SBOM), and — since the
   * registry may have no referrers API — the referrers tag sha256-<hex> listing it, as
   * cosign and oras do.
   */
  async pushReferrer(
    repository: string,
    subject: { digest: string; mediaType: string; size: number },
    artifactType: string,
    existing: Descriptor[] = [],
    content?: { mediaType: string; body: Buffer; annotations?: Record<string, string> },
  ): Promise<Descriptor> {
    const empty = Buffer.from('{}');
    const emptyDigest = await this.pushBlob(repository, empty);
    const payload =
      content?.body ?? Buffer.from(`payload for ${subject.digest} ${artifactType} ${randomBytes(4).toString('hex')}`);
    const payloadDigest = await this.pushBlob(repository, payload);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType,
      config: { mediaType: MediaTypes.ociEmpty, digest: emptyDigest, size: empty.length },
      layers: [
        { mediaType: content?.mediaType ?? 'application/octet-stream', digest: payloadDigest, size: payload.length },
      ],
      subject,
      annotations: { 'org.opencontainers.image.created': new Date().toISOString(), ...content?.annotations },
    };
    const body = JSON.stringify(manifest);
    const digest = await this.putManifest(repository, sha256(body), manifest, MediaTypes.ociManifest);
    const descriptor: Descriptor = {
      mediaType: MediaTypes.ociManifest,
      digest,
      size: Buffer.byteLength(body),
      artifactType,
      annotations: manifest.annotations,
    };
    const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [...existing, descriptor] };
    await this.putManifest(repository, subject.digest.replace(':', '-'), index, MediaTypes.ociIndex);
    return descriptor;
  }

  /**
   * A cosign ≤ 2 signature or attestation tag (sha256-<hex>.sig / .att): one manifest whose
   * layers are the signed payloads, each with its signature annotations.
   */
  async pushCosignTag(
    repository: string,
    digest: string,
    suffix: 'sig' | 'att',
    layers: { payload: Buffer; mediaType: string; annotations: Record<string, string> }[],
  ): Promise<string> {
    const config = Buffer.from(
      JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const configDigest = await this.pushBlob(repository, config);
    const descriptors: Descriptor[] = [];
    for (const layer of layers) {
      const d = await this.pushBlob(repository, layer.payload);
      descriptors.push({
        mediaType: layer.mediaType,
        digest: d,
        size: layer.payload.length,
        annotations: layer.annotations,
      });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: config.length },
      layers: descriptors,
    };
    return this.putManifest(repository, `${digest.replace(':', '-')}.${suffix}`, manifest, MediaTypes.ociManifest);
  }
}
