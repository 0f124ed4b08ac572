// Registry push notifications, reduced to what Patchline trusts them for: "look now at this
// repository (and tag)". A digest in a payload is only a hint of what to wait for (the watcher
// keeps looking until the tag shows it); the digest itself is always read from the registry.
//
// Shapes (reference/build-and-registry-apis.md §6):
//   distribution  {events:[{action, target:{repository, tag, digest, mediaType, url}, request:{host}}]}
//   acr           {action, target:{repository, tag, digest}, request:{host}}; Event Grid and CloudEvents
//                 envelopes with the same `data`
//   harbor        {type:"PUSH_ARTIFACT", event_data:{repository:{repo_full_name}, resources:[{tag, digest, resource_url}]}}
//                 or CloudEvents {type:"harbor.artifact.pushed", data:{...}}
//   dockerhub     {push_data:{tag}, repository:{repo_name}}
//   quay          {repository:"ns/name", docker_url:"quay.io/ns/name", updated_tags:[...]}
//   github        package / registry_package events: package_version.package_url "ghcr.io/o/n:tag"
//   generic       {image:"registry/repo:tag"} or {images:[...]}
import type { PushNotice } from '../watcher.ts';
import { DOCKER_HUB, ReferenceError, isValidTag, looksLikeDigest, parseReference } from '../reference.ts';
import { INDEX_TYPES, MANIFEST_TYPES } from '../manifest.ts';

export const FORMATS = ['distribution', 'acr', 'harbor', 'dockerhub', 'quay', 'github', 'generic'] as const;
export type WebhookFormat = (typeof FORMATS)[number];

export class PayloadError extends Error {}

/** What a payload asks for: notices, or (Event Grid) a subscription handshake to answer. */
export interface ParsedPayload {
  notices: PushNotice[];
  /** Why notices of the payload were left out (a tag that is not one), for the log. */
  skipped?: string[];
  /** Event Grid's subscription validation: echo this code back. */
  validationCode?: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

function obj(v: unknown, what: string): Json {
  if (!isObject(v)) throw new PayloadError(`${what} is missing or not an object`);
  return v;
}

/** registry/repository[:tag], as in a resource URL or package URL. */
function fromImage(image: string, what: string): PushNotice {
  try {
    const ref = parseReference(image.replace(/^[a-z]+:\/\//, ''));
    const notice: PushNotice = { registry: ref.registry, repository: ref.repository };
    // parseReference defaults the tag to latest; only keep a tag the payload named.
    if (/:[\w][\w.-]{0,127}(@|$)/.test(image.slice(image.lastIndexOf('/') + 1))) notice.tag = ref.tag!;
    return notice;
  } catch (err) {
    throw new PayloadError(`${what}: ${err instanceof ReferenceError ? err.message : String(err)}`);
  }
}

/** A repository path as a registry sends it, checked and normalised (docker.io: library/). */
function repositoryOf(
  registry: string | undefined,
  repository: string,
  what: string,
): { registry?: string; repository: string } {
  try {
    const ref = parseReference(registry ? `${registry}/${repository}` : repository);
    return registry || ref.registry !== DOCKER_HUB
      ? { registry: ref.registry, repository: ref.repository }
      : { repository: ref.repository };
  } catch (err) {
    throw new PayloadError(`${what}: ${err instanceof ReferenceError ? err.message : String(err)}`);
  }
}

function hostOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url.includes('://') ? url : `https://${url}`).host;
  } catch {
    return undefined;
  }
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * `digest`: what a push event says was pushed (distribution, ACR, Harbor), kept only when it is
 * a well-formed sha256 digest and the event names a tag — the watcher waits for the tag to show it.
 */
function withTag(n: { registry?: string; repository: string }, tag: string | undefined, digest?: string): PushNotice {
  const notice: PushNotice = { repository: n.repository };
  if (n.registry) notice.registry = n.registry;
  if (tag) notice.tag = tag;
  if (tag && digest && DIGEST.test(digest)) notice.digest = digest;
  return notice;
}

function distribution(body: unknown): PushNotice[] {
  const events = obj(body, 'body').events;
  if (!Array.isArray(events)) throw new PayloadError('body.events is not a list');
  const out: PushNotice[] = [];
  events.forEach((e, i) => {
    const event = obj(e, `events[${i}]`);
    const action = str(event.action);
    if (action !== 'push' && action !== 'delete') return;
    const target = obj(event.target, `events[${i}].target`);
    const mediaType = str(target.mediaType);
    // Blob pushes also notify; only manifests (and tag deletions) change what a tag points to.
    if (action === 'push' && mediaType && ![...MANIFEST_TYPES, ...INDEX_TYPES].includes(mediaType)) return;
    const repository = str(target.repository);
    if (!repository) throw new PayloadError(`events[${i}].target.repository is missing`);
    const host = str(isObject(event.request) ? event.request.host : undefined) ?? hostOf(str(target.url));
    const pushed = action === 'push' ? str(target.digest) : undefined;
    out.push(withTag(repositoryOf(host, repository, `events[${i}]`), str(target.tag), pushed));
  });
  return out;
}

function acrEvent(e: Json, what: string): PushNotice[] {
  const action = str(e.action);
  if (action && action !== 'push' && action !== 'delete') return [];
  const target = obj(e.target, `${what}.target`);
  const repository = str(target.repository);
  if (!repository) throw new PayloadError(`${what}.target.repository is missing`);
  const host = str(isObject(e.request) ? e.request.host : undefined);
  const pushed = action === 'delete' ? undefined : str(target.digest);
  return [withTag(repositoryOf(host, repository, what), str(target.tag), pushed)];
}

function acr(body: unknown): ParsedPayload {
  // Event Grid schema: a list of {eventType, data}; CloudEvents: {specversion, type, data}.
  const items = Array.isArray(body) ? body : [body];
  const notices: PushNotice[] = [];
  for (const [i, item] of items.entries()) {
    const e = obj(item, `event ${i}`);
    const type = str(e.eventType) ?? str(e.type);
    if (type === 'Microsoft.EventGrid.SubscriptionValidationEvent') {
      const code = str(obj(e.data, 'data').validationCode);
      if (!code) throw new PayloadError('subscription validation without validationCode');
      return { notices: [], validationCode: code };
    }
    // Event Grid and CloudEvents name the type in full; some relays and the portal's samples
    // use the short form (ImagePushed). Chart events and others say nothing about images.
    const short = type?.replace(/^Microsoft\.ContainerRegistry\./, '');
    if (short === 'ImagePushed' || short === 'ImageDeleted') {
      notices.push(...acrEvent(obj(e.data, `event ${i}.data`), `event ${i}.data`));
    } else if (type !== undefined && (type !== short || /^Chart(Pushed|Deleted)$/.test(short ?? ''))) {
      continue;
    } else {
      notices.push(...acrEvent(e, `event ${i}`));
    }
  }
  return { notices };
}

function harbor(body: unknown): PushNotice[] {
  const b = obj(body, 'body');
  const type = str(b.type) ?? '';
  const data = b.specversion !== undefined ? obj(b.data, 'data') : obj(b.event_data, 'event_data');
  if (!/PUSH_ARTIFACT|DELETE_ARTIFACT|artifact\.pushed|artifact\.deleted/.test(type)) return [];
  const repo = obj(data.repository, 'repository');
  const fullName = str(repo.repo_full_name);
  if (!fullName) throw new PayloadError('repository.repo_full_name is missing');
  const resources = Array.isArray(data.resources) ? data.resources : [];
  if (resources.length === 0) return [withTag(repositoryOf(undefined, fullName, 'repository'), undefined)];
  return resources.map((r, i) => {
    const res = obj(r, `resources[${i}]`);
    const url = str(res.resource_url);
    const host = url ? url.split('/')[0] : undefined;
    const pushed = /PUSH_ARTIFACT|artifact\.pushed/.test(type) ? str(res.digest) : undefined;
    return withTag(repositoryOf(host, fullName, `resources[${i}]`), str(res.tag), pushed);
  });
}

function dockerhub(body: unknown): PushNotice[] {
  const b = obj(body, 'body');
  const repo = str(obj(b.repository, 'repository').repo_name);
  if (!repo) throw new PayloadError('repository.repo_name is missing');
  const tag = str(obj(b.push_data, 'push_data').tag);
  return [withTag({ registry: DOCKER_HUB, ...repositoryOf(DOCKER_HUB, repo, 'repository') }, tag)];
}

function quay(body: unknown): PushNotice[] {
  const b = obj(body, 'body');
  const dockerUrl = str(b.docker_url);
  const repository = str(b.repository);
  if (!dockerUrl && !repository) throw new PayloadError('docker_url and repository are missing');
  const base = dockerUrl
    ? fromImage(dockerUrl, 'docker_url')
    : withTag(repositoryOf('quay.io', repository!, 'repository'), undefined);
  const tags = Array.isArray(b.updated_tags) ? b.updated_tags.filter((t): t is string => typeof t === 'string') : [];
  if (tags.length === 0) return [withTag(base, undefined)];
  return tags.map((t) => withTag(base, t));
}

function github(body: unknown, event: string | undefined): PushNotice[] {
  if (event === 'ping') return [];
  const b = obj(body, 'body');
  const pkg = isObject(b.registry_package) ? b.registry_package : isObject(b.package) ? b.package : undefined;
  if (!pkg) throw new PayloadError('neither registry_package nor package is present');
  const type = (str(pkg.package_type) ?? '').toLowerCase();
  if (type && type !== 'container' && type !== 'docker') return [];
  const version = isObject(pkg.package_version) ? pkg.package_version : {};
  const url = str(version.package_url);
  if (url) return [fromImage(githubPackageUrl(url), 'package_version.package_url')];
  const host = hostOf(str(isObject(pkg.registry) ? pkg.registry.url : undefined)) ?? 'ghcr.io';
  const namespace = str(pkg.namespace) ?? str(isObject(pkg.owner) ? pkg.owner.login : undefined);
  const name = str(pkg.name);
  if (!namespace || !name) throw new PayloadError('package name or namespace is missing');
  const meta = isObject(version.container_metadata) ? version.container_metadata : {};
  const tag = str(isObject(meta.tag) ? meta.tag.name : undefined);
  const repository = `${namespace}/${safeDecode(name)}`.toLowerCase();
  return [withTag(repositoryOf(host, repository, 'package'), tag)];
}

/**
 * GitHub's package_url as an image reference. Its quirks: an untagged version ends in a bare
 * colon ("ghcr.io/acme/app:"), which names every tag; the owner keeps its capitals
 * ("ghcr.io/Acme/app:1"), where the registry's names are lower case; nested names may come
 * percent-encoded ("acme/tools%2Fapp").
 */
function githubPackageUrl(url: string): string {
  const bare = url.replace(/^[a-z]+:\/\//i, '').replace(/:$/, '');
  const lastSlash = bare.lastIndexOf('/');
  const colon = bare.indexOf(':', lastSlash + 1);
  const name = colon >= 0 ? bare.slice(0, colon) : bare;
  const tag = colon >= 0 ? bare.slice(colon) : '';
  const slash = name.indexOf('/');
  const host = slash >= 0 ? name.slice(0, slash) : name;
  const path = slash >= 0 ? safeDecode(name.slice(slash + 1)).toLowerCase() : '';
  return `${host.toLowerCase()}/${path}${tag}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function generic(body: unknown): PushNotice[] {
  const b = obj(body, 'body');
  const images = Array.isArray(b.images) ? b.images : b.image !== undefined ? [b.image] : undefined;
  if (!images || images.length === 0) throw new PayloadError('expected {"image": "..."} or {"images": [...]}');
  if (images.length > 100) throw new PayloadError('at most 100 images per notification');
  return images.map((img, i) => {
    if (typeof img !== 'string') throw new PayloadError(`images[${i}] is not a string`);
    return fromImage(img, `images[${i}]`);
  });
}

/**
 * Parses one payload of a format. `event` is a header some senders set (X-GitHub-Event).
 * Nothing that is not a valid reference is handed on (repositories are parsed as they are
 * read; tags here): a tag that is not one is skipped with a reason, and a digest where the tag
 * goes (Harbor's push by digest) asks for a look at every followed tag of the repository.
 */
export function parsePayload(format: WebhookFormat, body: unknown, event?: string): ParsedPayload {
  const parsed = parseFormat(format, body, event);
  const notices: PushNotice[] = [];
  const skipped: string[] = [];
  for (const n of parsed.notices) {
    if (n.tag === undefined || isValidTag(n.tag)) notices.push(n);
    else if (looksLikeDigest(n.tag))
      notices.push({ ...(n.registry ? { registry: n.registry } : {}), repository: n.repository });
    else skipped.push(`${n.repository}: "${abbreviate(n.tag)}" is not a tag`);
  }
  return { ...parsed, notices, ...(skipped.length > 0 ? { skipped } : {}) };
}

function abbreviate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

function parseFormat(format: WebhookFormat, body: unknown, event: string | undefined): ParsedPayload {
  switch (format) {
    case 'distribution':
      return { notices: distribution(body) };
    case 'acr':
      return acr(body);
    case 'harbor':
      return { notices: harbor(body) };
    case 'dockerhub':
      return { notices: dockerhub(body) };
    case 'quay':
      return { notices: quay(body) };
    case 'github':
      return { notices: github(body, event) };
    case 'generic':
      return { notices: generic(body) };
  }
}
