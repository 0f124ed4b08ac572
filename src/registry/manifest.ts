// OCI and Docker manifest formats: media types, and parsing that checks the shape of what a
// registry sent before anything relies on it.

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Every manifest type, indexes first: a multi-platform tag then resolves to its index digest. */
export const MANIFEST_ACCEPT = [
  MediaTypes.ociIndex,
  MediaTypes.dockerList,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
].join(', ');

export const INDEX_TYPES: readonly string[] = [MediaTypes.ociIndex, MediaTypes.dockerList];
export const MANIFEST_TYPES: readonly string[] = [MediaTypes.ociManifest, MediaTypes.dockerManifest];

/** Annotations that declare what an image was built on. */
export const Annotations = {
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
  created: 'org.opencontainers.image.created',
  /** On an index entry: "attestation-manifest" marks BuildKit's attestations, not an image. */
  referenceType: 'vnd.docker.reference.type',
} as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

export type Manifest = ImageIndex | ImageManifest;

export interface ImageConfig {
  created?: string;
  os?: string;
  architecture?: string;
  labels: Record<string, string>;
  /** config.User: who the image runs as ("" or absent: root). */
  user?: string;
}

export class ManifestFormatError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw new ManifestFormatError(`${what} must map strings to strings`);
  }
  return v as Record<string, string>;
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw new ManifestFormatError(`${what} is not an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || typeof size !== 'number') {
    throw new ManifestFormatError(`${what} needs mediaType, digest and size`);
  }
  const d: Descriptor = { mediaType, digest, size };
  const annotations = stringMap(v.annotations, `${what}.annotations`);
  if (annotations) d.annotations = annotations;
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isObject(v.platform)) {
    const p = v.platform;
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string') {
      throw new ManifestFormatError(`${what}.platform needs os and architecture`);
    }
    d.platform = { os: p.os, architecture: p.architecture };
    if (typeof p.variant === 'string') d.platform.variant = p.variant;
    if (typeof p['os.version'] === 'string') d.platform['os.version'] = p['os.version'];
  }
  return d;
}

/** Parses a manifest or index; `contentType` is the response's Content-Type. */
export function parseManifest(body: unknown, contentType: string | undefined): Manifest {
  if (!isObject(body)) throw new ManifestFormatError('manifest is not a JSON object');
  if (body.schemaVersion !== 2)
    throw new ManifestFormatError(`unsupported schemaVersion ${String(body.schemaVersion)}`);
  const mediaType = typeof body.mediaType === 'string' ? body.mediaType : (contentType?.split(';')[0]?.trim() ?? '');
  const annotations = stringMap(body.annotations, 'annotations');
  const subject = body.subject === undefined ? undefined : parseDescriptor(body.subject, 'subject');
  if (Array.isArray(body.manifests) || INDEX_TYPES.includes(mediaType)) {
    if (!Array.isArray(body.manifests)) throw new ManifestFormatError('index has no manifests list');
    const index: ImageIndex = {
      kind: 'index',
      mediaType: mediaType || MediaTypes.ociIndex,
      manifests: body.manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`)),
    };
    if (annotations) index.annotations = annotations;
    if (subject) index.subject = subject;
    return index;
  }
  if (!Array.isArray(body.layers)) throw new ManifestFormatError('manifest has no layers list');
  const manifest: ImageManifest = {
    kind: 'manifest',
    mediaType: mediaType || MediaTypes.ociManifest,
    config: parseDescriptor(body.config, 'config'),
    layers: body.layers.map((l, i) => parseDescriptor(l, `layers[${i}]`)),
  };
  if (annotations) manifest.annotations = annotations;
  if (subject) manifest.subject = subject;
  if (typeof body.artifactType === 'string') manifest.artifactType = body.artifactType;
  return manifest;
}

export function parseImageConfig(body: unknown): ImageConfig {
  if (!isObject(body)) throw new ManifestFormatError('image config is not a JSON object');
  const config: ImageConfig = { labels: {} };
  if (typeof body.created === 'string') {
    if (Number.isNaN(Date.parse(body.created)))
      throw new ManifestFormatError(`created "${body.created}" is not a time`);
    config.created = body.created;
  }
  if (typeof body.os === 'string') config.os = body.os;
  if (typeof body.architecture === 'string') config.architecture = body.architecture;
  const inner = isObject(body.config) ? body.config : {};
  config.labels = stringMap(inner.Labels, 'config.Labels') ?? {};
  if (typeof inner.User === 'string') config.user = inner.User.slice(0, 256);
  return config;
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Whether a manifest's platform is the wanted one. A wanted platform without variant
 * matches any variant; linux/arm64 also matches linux/arm64/v8.
 */
export function platformMatches(have: Platform, want: string): boolean {
  const [os, arch, variant] = want.split('/');
  if (have.os !== os || have.architecture !== arch) return false;
  return variant === undefined || have.variant === variant || (arch === 'arm64' && variant === 'v8' && !have.variant);
}
