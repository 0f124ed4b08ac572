// Image references, parsed and normalised exactly as Docker does (distribution/reference:
// ParseNormalizedNamed, then TagNameOnly):
//   - the first path component is a registry only if it contains '.' or ':', is
//     "localhost", or has upper-case letters; otherwise the registry is docker.io;
//   - index.docker.io is docker.io, and single-component Docker Hub names get "library/";
//   - the repository path is lower case, its components are [a-z0-9] separated by '.', '_',
//     '__' or dashes, and the whole name is at most 255 characters;
//   - a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a digest is algorithm:hex, and only
//     sha256 (64 hex) and sha512 (128 hex) are accepted, as registries do;
//   - with neither tag nor digest, the tag is "latest".

export interface ImageReference {
  /** Registry host, with port if any: docker.io, ghcr.io, 127.0.0.1:5000. */
  registry: string;
  /** Repository path within the registry: library/nginx, acme/app. */
  repository: string;
  tag?: string;
  digest?: string;
}

export class ReferenceError extends Error {
  constructor(reference: string, reason: string) {
    super(`invalid image reference "${reference.length > 300 ? reference.slice(0, 300) + '…' : reference}": ${reason}`);
    this.name = 'ReferenceError';
  }
}

export const DOCKER_HUB = 'docker.io';
const MAX_NAME = 255;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const ANY_DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const HEX64 = /^[a-f0-9]{64}$/;

function isValidDomain(domain: string): boolean {
  let host = domain;
  // As Docker's grammar: an IPv6 host is hex digits and colons only (no zone, no dotted tail).
  const ipv6 = /^\[[0-9a-fA-F:]+\](?::\d+)?$/.exec(domain);
  if (ipv6) return true;
  const colon = host.lastIndexOf(':');
  if (colon >= 0) {
    if (!/^\d+$/.test(host.slice(colon + 1))) return false;
    host = host.slice(0, colon);
  }
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

export function isValidDigest(digest: string): boolean {
  return DIGEST.test(digest);
}

/** A tag as the distribution spec defines it: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Whether a string has a digest's shape (algorithm:hex), supported or not. */
export function looksLikeDigest(text: string): boolean {
  return ANY_DIGEST.test(text);
}

export function parseReference(input: string): ImageReference {
  const text = input;
  if (!text) throw new ReferenceError(input, 'empty');
  // As Docker's parser: surrounding whitespace makes a reference invalid, it is not trimmed.
  if (text.trim() !== text) throw new ReferenceError(input, 'surrounding whitespace');
  if (HEX64.test(text)) {
    throw new ReferenceError(input, 'a 64-character hexadecimal string is an image id, not a reference');
  }

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST.test(digest)) throw new ReferenceError(input, `"${digest}" is not a digest (algorithm:hex)`);
    if (!DIGEST.test(digest)) {
      throw new ReferenceError(input, 'only sha256 (64 lower-case hex digits) and sha512 (128) digests are supported');
    }
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      throw new ReferenceError(
        input,
        `"${tag}" is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`,
      );
    }
  }

  if (!rest) throw new ReferenceError(input, 'no repository name');
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!isValidDomain(registry)) throw new ReferenceError(input, `"${registry}" is not a registry host`);
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;

  if (repository.toLowerCase() !== repository) {
    throw new ReferenceError(input, `repository name "${repository}" must be lower case`);
  }
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ReferenceError(
        input,
        `"${component}" is not a valid path component (lower-case letters and digits, separated by . _ __ or -)`,
      );
    }
  }
  // Docker limits the path (without the registry host; library/ included for Docker Hub's
  // official images, as normalised) to 255 characters.
  if (repository.length > MAX_NAME)
    throw new ReferenceError(input, `repository name longer than ${MAX_NAME} characters`);

  if (!tag && !digest) tag = 'latest';
  const ref: ImageReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** registry/repository, e.g. docker.io/library/nginx. */
export function repositoryName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical string: registry/repository[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** The reference pinned to a digest, without its tag: registry/repository@digest. */
export function pinned(ref: ImageReference, digest: string): string {
  return `${repositoryName(ref)}@${digest}`;
}

/** What a pull resolves: the digest if given, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** The first 12 hex digits of a digest, with its algorithm: sha256:0123456789ab. */
export function shortDigest(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return `${algorithm}:${(hex ?? '').slice(0, 12)}`;
}
