// Each resource's subscriptions to the shared digest watcher: kept in line with its spec
// (images, credentials, interval), dropped when it is deleted or suspended. A new digest of
// any of them queues the resource for reconciliation.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import { formatReference, type ImageReference } from '../registry/reference.ts';
import type { DigestWatcher, Subscription, TargetState } from '../registry/watcher.ts';

export interface WatchWish {
  reference: ImageReference;
  source: CredentialSource;
  intervalMs: number;
}

interface Held {
  wish: string;
  subscription: Subscription;
}

export class ResourceWatches {
  private readonly watcher: DigestWatcher;
  private readonly onChange: (key: string) => void;
  private readonly held = new Map<string, Map<string, Held>>();

  constructor(watcher: DigestWatcher, onChange: (key: string) => void) {
    this.watcher = watcher;
    this.onChange = onChange;
  }

  /** Subscribes what the resource now wants and unsubscribes what it no longer does. */
  sync(key: string, wishes: WatchWish[]): void {
    const current = this.held.get(key) ?? new Map<string, Held>();
    const next = new Map<string, Held>();
    for (const w of wishes) {
      const ref = formatReference(w.reference);
      const identity = `${ref}|${w.source.id}|${w.intervalMs}`;
      const existing = current.get(ref);
      if (existing && existing.wish === identity) {
        next.set(ref, existing);
        current.delete(ref);
        continue;
      }
      const wake = (): void => this.onChange(key);
      const subscription = this.watcher.subscribe(w, wake, wake);
      next.set(ref, { wish: identity, subscription });
    }
    for (const old of current.values()) old.subscription.unsubscribe();
    if (next.size > 0) this.held.set(key, next);
    else this.held.delete(key);
  }

  /** What the watcher knows of one of the resource's references. */
  state(key: string, reference: ImageReference): TargetState | undefined {
    return this.held.get(key)?.get(formatReference(reference))?.subscription.state();
  }

  /** Asks for a look at a reference now rather than at its next interval (a build just pushed it). */
  lookNow(reference: ImageReference): void {
    this.watcher.checkNow({
      registry: reference.registry,
      repository: reference.repository,
      ...(reference.tag ? { tag: reference.tag } : {}),
    });
  }

  drop(key: string): void {
    this.sync(key, []);
  }

  count(): number {
    return this.held.size;
  }
}
