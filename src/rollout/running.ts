// What a workload's containers actually run, read from its pods: the kubelet reports the
// resolved image in containerStatuses[].imageID, whatever the spec said (a tag, a digest, an
// image pulled long ago). Pure functions over the objects the informers hold.
import { isValidDigest, parseReference, repositoryName, type ImageReference } from '../registry/reference.ts';

export interface ContainerStatusLike {
  name: string;
  image?: string;
  imageID?: string;
  ready?: boolean;
}

export interface PodLike {
  metadata?: { name?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { phase?: string; containerStatuses?: ContainerStatusLike[] };
}

/**
 * The digest in an imageID: `repo@sha256:…`, `docker-pullable://repo@sha256:…`, or a bare
 * `sha256:…` (which some runtimes report as the image config id, not a manifest digest, and
 * which therefore says nothing about the manifest run: undefined).
 */
export function digestOfImageID(imageID: string | undefined): string | undefined {
  if (!imageID) return undefined;
  const at = imageID.lastIndexOf('@');
  if (at < 0) return undefined;
  const digest = imageID.slice(at + 1);
  return isValidDigest(digest) ? digest : undefined;
}

/** The repository an image reference names, normalised (docker.io/library/… for short names); undefined if unparsable. */
export function repositoryOf(image: string): string | undefined {
  try {
    return repositoryName(parseReference(image));
  } catch {
    return undefined;
  }
}

/** Whether a container's image is of the followed repository (tags and digests aside). */
export function isOfRepository(containerImage: string, followed: ImageReference): boolean {
  return repositoryOf(containerImage) === repositoryName(followed);
}

export interface RunningContainer {
  /** The digests the workload's running pods report for the container, most common first. */
  digests: { digest: string; pods: number; ready: number }[];
  /** Running pods whose runtime has not reported a digest yet (pulling, or a bare config id). */
  unknown: number;
}

/** Per container name, the digests the given pods (of one workload) run. */
export function runningDigests(pods: readonly PodLike[]): Map<string, RunningContainer> {
  const out = new Map<string, RunningContainer>();
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') continue;
    for (const cs of pod.status.containerStatuses ?? []) {
      const entry = out.get(cs.name) ?? { digests: [], unknown: 0 };
      out.set(cs.name, entry);
      const digest = digestOfImageID(cs.imageID);
      if (!digest) {
        entry.unknown++;
        continue;
      }
      let d = entry.digests.find((x) => x.digest === digest);
      if (!d) {
        d = { digest, pods: 0, ready: 0 };
        entry.digests.push(d);
      }
      d.pods++;
      if (cs.ready) d.ready++;
    }
  }
  for (const entry of out.values()) entry.digests.sort((a, b) => b.pods - a.pods || (a.digest < b.digest ? -1 : 1));
  return out;
}
