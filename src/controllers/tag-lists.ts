// Tag lists of the repositories ImagePolicies follow by semver range or tag pattern: listed
// at most once per interval per repository and credentials, however many policies follow
// it, and listed again at once when the registry says something was pushed there. Only the
// list is shared here; the chosen tag's digest comes from the shared digest watcher (one
// HEAD), and no manifest is read per tag.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { ImageReference } from '../registry/reference.ts';
import { noticeRegistry, type PushNotice } from '../registry/watcher.ts';

export interface TagSource {
  tags(
    registry: string,
    repository: string,
    source: CredentialSource,
    options?: { signal?: AbortSignal },
  ): Promise<string[]>;
}

export interface TagListing {
  tags: string[];
  listedAt: number;
}

interface Entry {
  registry: string;
  repository: string;
  promise: Promise<TagListing>;
  /** When the entry may be listed again; a failure is kept briefly so that many followers do not retry at once. */
  expiresAt: number;
  followers: Set<string>;
}

/** How long a failed listing is answered from memory before it is tried again. */
const FAILURE_HOLD_MS = 30_000;

export class TagLists {
  private readonly source: TagSource;
  private readonly now: () => number;
  private readonly onPush: (followers: string[]) => void;
  private readonly entries = new Map<string, Entry>();

  /** `onPush`: told which followers (keys) to wake when a push invalidates their listing. */
  constructor(source: TagSource, onPush: (followers: string[]) => void, now: () => number = Date.now) {
    this.source = source;
    this.onPush = onPush;
    this.now = now;
  }

  /**
   * The repository's tags, listed again when the last listing is older than `maxAgeMs`.
   * `follower` (the policy's key) is woken when a push notice invalidates the listing.
   */
  list(
    follower: string,
    ref: ImageReference,
    source: CredentialSource,
    maxAgeMs: number,
    signal?: AbortSignal,
  ): Promise<TagListing> {
    const key = `${ref.registry}/${ref.repository}|${source.id}`;
    const now = this.now();
    let entry = this.entries.get(key);
    if (!entry || now >= entry.expiresAt) {
      const promise = this.source
        .tags(ref.registry, ref.repository, source, signal ? { signal } : {})
        .then((tags) => ({ tags, listedAt: this.now() }));
      const fresh: Entry = {
        registry: ref.registry,
        repository: ref.repository,
        promise,
        expiresAt: now + maxAgeMs,
        followers: entry?.followers ?? new Set(),
      };
      promise.catch(() => {
        if (this.entries.get(key) === fresh) fresh.expiresAt = Math.min(fresh.expiresAt, this.now() + FAILURE_HOLD_MS);
      });
      this.entries.set(key, fresh);
      entry = fresh;
    } else {
      // A shorter interval than the listing was made for shortens its life.
      entry.expiresAt = Math.min(entry.expiresAt, now + maxAgeMs);
    }
    entry.followers.add(follower);
    return entry.promise;
  }

  /** Forgets a follower (its policy was deleted or no longer lists tags). */
  drop(follower: string): void {
    for (const [key, entry] of this.entries) {
      entry.followers.delete(follower);
      if (entry.followers.size === 0) this.entries.delete(key);
    }
  }

  /** A registry push notice: the repository's listing is stale; its followers are woken. */
  pushed(notice: PushNotice): number {
    const registry = noticeRegistry(notice);
    const woken: string[] = [];
    for (const entry of this.entries.values()) {
      if (entry.repository !== notice.repository) continue;
      if (registry !== undefined && entry.registry !== registry) continue;
      entry.expiresAt = 0;
      woken.push(...entry.followers);
    }
    if (woken.length > 0) this.onPush(woken);
    return woken.length;
  }
}
