// The digest watcher: resources subscribe to image references, and each distinct reference
// (with its credential source) is checked with one HEAD per interval — the shortest interval
// among its subscribers — however many resources follow it. Every subscriber hears of each
// new digest, and a new subscriber of a reference already known hears its digest at once,
// without a request.
//
// Registry economy:
//  - References are checked in groups (same registry, credentials and interval), each group
//    at its own phase of the interval, derived from a hash of the group: the load is spread
//    across groups, and within a group the checks run together, so one token request serves
//    the whole group (a token typically lives 60-300 s, less than an interval).
//  - A failing reference backs off exponentially, never beyond its interval; a registry that
//    answers 429 is paused for its Retry-After.
//  - A registry with a request budget (requests per minute) whose references need more at
//    their intervals has every interval stretched by the same factor, so checks stay evenly
//    spread instead of piling up behind the budget; each reference's state says so (the
//    resources turn that into a condition), and a gauge gives the factor per registry.
//  - A webhook ("look now") makes a check immediate, but at most once per reference every
//    few seconds, so a flood of webhooks cannot become a flood of requests — unless the notice
//    announces a digest the reference does not have yet, which is news worth a look at once;
//    a notice announcing the digest already known costs no request at all. The digest always
//    comes from the registry, never from the webhook. When a triggered check does not find
//    what was announced (or, with no digest announced, finds nothing new), it looks again
//    after 50 ms, doubling: the distribution registry sends its push event before it moves
//    the tag, so the first look can be a few milliseconds early, and a fixed wait would make
//    every such push wait for it. The looks stop at the announced digest or at a bound.
import { backoffDelay, systemClock, type Clock, type Timer } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { counter, gauge, type Registry } from '../runtime/metrics.ts';
import type { CredentialSource } from './auth/credentials.ts';
import type { ManifestHead } from './client.ts';
import { RegistryError, type RegistryErrorCode } from './errors.ts';
import { DOCKER_HUB, formatReference, type ImageReference } from './reference.ts';

/** What the watcher needs from a registry client. */
export interface DigestSource {
  head(ref: ImageReference, source: CredentialSource, signal?: AbortSignal): Promise<ManifestHead>;
  prefetchTokens?(
    registry: string,
    repositories: string[],
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<void>;
  rateLimit?(registry: string): { remaining?: number } | undefined;
  /** The registry's request budget per minute; undefined: none. */
  budget?(registry: string): number | undefined;
}

/** A registry's budget cannot check its references at their intervals. */
export interface BudgetShortfall {
  registry: string;
  /** Requests a minute the registry's references need at their intervals. */
  neededPerMinute: number;
  allowedPerMinute: number;
  intervalMs: number;
  /** How often the reference is checked instead. */
  effectiveIntervalMs: number;
}

export interface WatchSpec {
  reference: ImageReference;
  source: CredentialSource;
  intervalMs: number;
}

export interface DigestEvent {
  reference: string;
  digest: string;
  mediaType: string;
  /** Undefined the first time the digest is learned. */
  previousDigest?: string;
  checkedAt: number;
}

export interface TargetState {
  reference: string;
  credentials: string;
  digest?: string;
  mediaType?: string;
  checkedAt?: number;
  /** When the current digest was first seen. */
  changedAt?: number;
  error?: string;
  errorCode?: RegistryErrorCode;
  failures: number;
  nextCheckAt: number;
  intervalMs: number;
  subscribers: number;
  rateLimitRemaining?: number;
  /** Set when the registry's budget stretches the interval. */
  budget?: BudgetShortfall;
}

export type DigestListener = (event: DigestEvent) => void;

export interface Subscription {
  readonly key: string;
  state(): TargetState | undefined;
  unsubscribe(): void;
}

/** The registry of a push notice as image references name it (index.docker.io is docker.io). */
export function noticeRegistry(notice: PushNotice): string | undefined {
  return notice.registry === 'index.docker.io' ? DOCKER_HUB : notice.registry;
}

export interface PushNotice {
  /** Registry host as in image references; undefined matches any registry. */
  registry?: string;
  repository: string;
  /** Undefined matches every tag of the repository. */
  tag?: string;
  /**
   * The manifest digest the event says was pushed, when it says one: only a hint of what to
   * wait for — the digest a tag points to is always read from the registry.
   */
  digest?: string;
}

/** What a webhook announced and how long to keep looking for it. */
interface Awaited {
  digest?: string;
  /** Looks taken after the triggered one. */
  looks: number;
  until: number;
}

/** Follow-up looks after a triggered check: 50 ms, doubling, each at most 2 s apart. */
const FOLLOW_UP_FIRST_MS = 50;
const FOLLOW_UP_MAX_GAP_MS = 2_000;

interface Target {
  key: string;
  ref: ImageReference;
  source: CredentialSource;
  listeners: Map<number, { listener: DigestListener; intervalMs: number; onHealth?: (() => void) | undefined }>;
  state: TargetState;
  inFlight: boolean;
  recheck: boolean;
  /** A webhook asked: follow-up looks are owed until this is found or the bound passes. */
  awaited?: Awaited;
  /** Requests a minute this reference adds to its registry's need. */
  counted: number;
}

export interface DigestWatcherOptions {
  client: DigestSource;
  logger: Logger;
  registry?: Registry;
  clock?: Clock;
  /** Shortest gap between two webhook-triggered checks of one reference; default 2 s. */
  minTriggerGapMs?: number;
  /**
   * How long to keep looking after a webhook: for the digest it announced (default 10 s), and
   * for anything new when it announced none (default 1.5 s: the registry moves the tag
   * within milliseconds of its event, or the event was not about a change).
   */
  followUpBoundMs?: { announced: number; unannounced: number };
  /** Checks started at once across all registries; default 512 (each registry has its own limit too). */
  maxConcurrentChecks?: number;
}

export class DigestWatcher {
  private readonly options: DigestWatcherOptions;
  private readonly clock: Clock;
  private readonly targets = new Map<string, Target>();
  private readonly pausedUntil = new Map<string, number>();
  /** Per registry: requests a minute its references need, and how much their intervals are stretched (1: not). */
  private readonly needed = new Map<string, number>();
  private readonly stretch = new Map<string, number>();
  /** Listeners across all targets, kept as they come and go (the gauge is set at each). */
  private subscriberCount = 0;
  private readonly budgetsToReview = new Set<string>();
  private timer: Timer | undefined;
  private timerAt = Infinity;
  private running = false;
  private inFlight = 0;
  private nextId = 0;
  private abort = new AbortController();
  private readonly metrics;

  constructor(options: DigestWatcherOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    const r = options.registry;
    this.metrics = r
      ? {
          targets: gauge(r, {
            name: 'patchline_watcher_references',
            help: 'Distinct references (with credentials) watched.',
            labelNames: [] as const,
          }),
          subscribers: gauge(r, {
            name: 'patchline_watcher_subscribers',
            help: 'Subscriptions to watched references.',
            labelNames: [] as const,
          }),
          checks: counter(r, {
            name: 'patchline_watcher_checks_total',
            help: 'Digest checks, by registry and result (unchanged, changed, error).',
            labelNames: ['registry', 'result'] as const,
          }),
          triggers: counter(r, {
            name: 'patchline_watcher_triggers_total',
            help: 'Immediate checks requested by webhooks, by registry.',
            labelNames: ['registry'] as const,
          }),
          needed: gauge(r, {
            name: 'patchline_watcher_needed_requests_per_minute',
            help: "Requests a minute a registry's followed references need at their intervals (one HEAD each).",
            labelNames: ['registry'] as const,
          }),
          stretch: gauge(r, {
            name: 'patchline_watcher_interval_stretch_ratio',
            help: "How much longer than asked a registry's check intervals are, because of its request budget (1: as asked).",
            labelNames: ['registry'] as const,
          }),
        }
      : undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.abort.abort();
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /**
   * `onHealth` is called when checks of the reference start failing and when they recover,
   * so that a subscriber can report an unreachable registry (digests alone never change then).
   */
  subscribe(spec: WatchSpec, listener: DigestListener, onHealth?: () => void): Subscription {
    if (spec.reference.digest && !spec.reference.tag) {
      throw new Error(`${formatReference(spec.reference)} is pinned to a digest; there is nothing to watch`);
    }
    const ref: ImageReference = {
      registry: spec.reference.registry,
      repository: spec.reference.repository,
      tag: spec.reference.tag ?? 'latest',
    };
    const reference = formatReference(ref);
    const key = `${reference}|${spec.source.id}`;
    const now = this.clock.now();
    let target = this.targets.get(key);
    if (!target) {
      target = {
        key,
        ref,
        source: spec.source,
        listeners: new Map(),
        inFlight: false,
        recheck: false,
        counted: 0,
        state: {
          reference,
          credentials: spec.source.id,
          failures: 0,
          nextCheckAt: now,
          intervalMs: spec.intervalMs,
          subscribers: 0,
        },
      };
      this.targets.set(key, target);
    }
    const id = this.nextId++;
    target.listeners.set(id, { listener, intervalMs: spec.intervalMs, onHealth });
    this.subscriberCount++;
    this.updateInterval(target);
    const known = target.state;
    if (known.digest) {
      const event: DigestEvent = {
        reference,
        digest: known.digest,
        mediaType: known.mediaType ?? '',
        checkedAt: known.checkedAt ?? now,
      };
      queueMicrotask(() => this.deliver(listener, event));
    }
    this.updateGauges();
    // Subscriptions made together (a resync, a start-up) are checked together.
    this.scheduleSoon();
    const t = target;
    return {
      key,
      state: () => (this.targets.get(key) === t ? this.stateOf(t) : undefined),
      unsubscribe: () => {
        if (t.listeners.delete(id)) this.subscriberCount--;
        if (t.listeners.size === 0) {
          this.targets.delete(key);
          this.account(t, 0);
        } else this.updateInterval(t);
        this.updateGauges();
        this.scheduleSoon();
      },
    };
  }

  /** Makes matching references due now (a webhook said "look"); returns how many matched. */
  checkNow(notice: PushNotice): number {
    const now = this.clock.now();
    const gap = this.options.minTriggerGapMs ?? 2_000;
    const registry = noticeRegistry(notice);
    let matched = 0;
    for (const t of this.targets.values()) {
      if (registry !== undefined && t.ref.registry !== registry) continue;
      if (t.ref.repository !== notice.repository) continue;
      if (notice.tag !== undefined && t.ref.tag !== notice.tag) continue;
      matched++;
      if (notice.digest !== undefined && notice.digest === t.state.digest) continue; // already known
      this.metrics?.triggers.inc({ registry: t.ref.registry });
      const news = notice.digest !== undefined && notice.digest !== t.awaited?.digest;
      const bounds = this.options.followUpBoundMs ?? { announced: 10_000, unannounced: 1_500 };
      if (!t.awaited || news) {
        t.awaited = {
          ...(notice.digest !== undefined ? { digest: notice.digest } : {}),
          looks: 0,
          until: now + (notice.digest !== undefined ? bounds.announced : bounds.unannounced),
        };
      }
      if (t.inFlight) {
        t.recheck = true;
        continue;
      }
      const earliest = news ? now : (t.state.checkedAt ?? -Infinity) + gap;
      t.state.nextCheckAt = Math.min(t.state.nextCheckAt, Math.max(now, earliest));
    }
    if (matched > 0) this.schedule();
    return matched;
  }

  states(): TargetState[] {
    return [...this.targets.values()].map((t) => this.stateOf(t));
  }

  private stateOf(t: Target): TargetState {
    const stretch = this.stretch.get(t.ref.registry) ?? 1;
    if (stretch <= 1) return { ...t.state };
    const registry = t.ref.registry;
    return {
      ...t.state,
      budget: {
        registry,
        neededPerMinute: Math.round(this.needed.get(registry) ?? 0),
        allowedPerMinute: this.options.client.budget?.(registry) ?? 0,
        intervalMs: t.state.intervalMs,
        effectiveIntervalMs: Math.round(t.state.intervalMs * stretch),
      },
    };
  }

  /** Sets what the reference adds to its registry's need (0 when it is gone). */
  private account(t: Target, perMinute: number): void {
    const registry = t.ref.registry;
    this.needed.set(registry, (this.needed.get(registry) ?? 0) - t.counted + perMinute);
    t.counted = perMinute;
    this.budgetsToReview.add(registry);
  }

  /**
   * Compares each changed registry's need with its budget. The subscribers of its references
   * hear when the interval starts or stops being stretched, or the stretch changes by more
   * than a tenth (a condition's message says by how much; it should not churn).
   */
  private reviewBudgets(): void {
    for (const registry of this.budgetsToReview) {
      const needed = this.needed.get(registry) ?? 0;
      const allowed = this.options.client.budget?.(registry);
      const stretch = allowed !== undefined && needed > allowed ? needed / allowed : 1;
      const before = this.stretch.get(registry) ?? 1;
      if (needed <= 0) {
        this.needed.delete(registry);
        this.stretch.delete(registry);
      } else this.stretch.set(registry, stretch);
      this.metrics?.needed.set({ registry }, needed);
      this.metrics?.stretch.set({ registry }, stretch);
      const crossed = before > 1 !== stretch > 1;
      if (!crossed && Math.abs(stretch / before - 1) <= 0.1) {
        this.stretch.set(registry, before); // keep reporting the figure subscribers were told
        continue;
      }
      if (stretch > 1) {
        this.options.logger.warn('the request budget cannot check every reference at its interval', {
          registry,
          neededPerMinute: Math.round(needed),
          allowedPerMinute: allowed,
          stretch: Math.round(stretch * 100) / 100,
        });
      } else if (before > 1) {
        this.options.logger.info('the request budget checks every reference at its interval again', { registry });
      }
      for (const t of this.targets.values()) if (t.ref.registry === registry) this.healthChanged(t);
    }
    this.budgetsToReview.clear();
  }

  private updateInterval(t: Target): void {
    const interval = Math.min(...[...t.listeners.values()].map((l) => l.intervalMs));
    const previous = t.state.intervalMs;
    t.state.intervalMs = interval;
    this.account(t, 60_000 / interval);
    t.state.subscribers = t.listeners.size;
    if (interval !== previous && t.state.checkedAt !== undefined && t.state.failures === 0) {
      t.state.nextCheckAt = Math.max(this.clock.now(), this.nextSlot(t, t.state.checkedAt));
    }
  }

  /**
   * The next check time after `from`: the group's phase of the interval, at least half an
   * interval later. In steady state that is exactly one interval after the last check.
   */
  private nextSlot(t: Target, from: number): number {
    const interval = Math.round(t.state.intervalMs * (this.stretch.get(t.ref.registry) ?? 1));
    const phase = Math.floor(fraction(`${t.ref.registry}|${t.source.id}|${interval}`) * interval);
    const k = Math.ceil((from + interval / 2 - phase) / interval);
    return phase + k * interval;
  }

  private soon = false;

  private scheduleSoon(): void {
    if (this.soon) return;
    this.soon = true;
    queueMicrotask(() => {
      this.soon = false;
      this.schedule();
    });
  }

  private updateGauges(): void {
    this.metrics?.targets.set(this.targets.size);
    this.metrics?.subscribers.set(this.subscriberCount);
  }

  /** When a reference may next be checked: its own schedule, or later if its registry is paused. */
  private due(t: Target): number {
    return Math.max(t.state.nextCheckAt, this.pausedUntil.get(t.ref.registry) ?? 0);
  }

  /** Sets the timer for the earliest due target, or runs the due ones now. */
  private schedule(): void {
    if (this.budgetsToReview.size > 0) this.reviewBudgets();
    if (!this.running) return;
    const now = this.clock.now();
    let earliest = Infinity;
    for (const t of this.targets.values()) if (!t.inFlight) earliest = Math.min(earliest, this.due(t));
    if (earliest === Infinity) return;
    if (earliest <= now) {
      this.runDue();
      return;
    }
    if (this.timer && this.timerAt <= earliest) return;
    this.timer?.cancel();
    this.timerAt = earliest;
    this.timer = this.clock.setTimer(earliest - now, () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.runDue();
    });
  }

  private runDue(): void {
    if (!this.running) return;
    const now = this.clock.now();
    const max = this.options.maxConcurrentChecks ?? 512;
    const due = [...this.targets.values()]
      .filter((t) => !t.inFlight && this.due(t) <= now)
      .sort((a, b) => a.state.nextCheckAt - b.state.nextCheckAt);
    const batch = due.slice(0, Math.max(0, max - this.inFlight));
    if (batch.length > 0) void this.checkBatch(batch);
    if (due.length > batch.length) return; // the rest runs as checks finish
    this.schedule();
  }

  private async checkBatch(batch: Target[]): Promise<void> {
    for (const t of batch) t.inFlight = true;
    this.inFlight += batch.length;
    // One token request per registry and credential source for everything due together.
    const groups = new Map<string, Target[]>();
    for (const t of batch) {
      const k = `${t.ref.registry}|${t.source.id}`;
      groups.set(k, [...(groups.get(k) ?? []), t]);
    }
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0]!;
        if (group.length > 1 && this.options.client.prefetchTokens) {
          try {
            await this.options.client.prefetchTokens(
              first.ref.registry,
              [...new Set(group.map((t) => t.ref.repository))],
              first.source,
              this.abort.signal,
            );
          } catch {
            // Each check then authorizes on its own and reports its own error.
          }
        }
        await Promise.all(group.map((t) => this.check(t)));
      }),
    );
    this.schedule();
  }

  private async check(t: Target): Promise<void> {
    const log = this.options.logger;
    // The cadence counts from when a check starts, so that registry latency does not drift it.
    const started = this.clock.now();
    try {
      const head = await this.options.client.head(t.ref, t.source, this.abort.signal);
      const now = this.clock.now();
      const previous = t.state.digest;
      const recovered = t.state.error !== undefined;
      t.state.checkedAt = now;
      t.state.failures = 0;
      delete t.state.error;
      delete t.state.errorCode;
      if (recovered && head.digest === previous) this.healthChanged(t);
      t.state.mediaType = head.mediaType;
      const remaining = this.options.client.rateLimit?.(t.ref.registry)?.remaining;
      if (remaining !== undefined) t.state.rateLimitRemaining = remaining;
      t.state.nextCheckAt = this.nextSlot(t, started);
      if (head.digest !== previous) {
        t.state.digest = head.digest;
        t.state.changedAt = now;
        this.metrics?.checks.inc({ registry: t.ref.registry, result: 'changed' });
        if (previous)
          log.info('new digest', { reference: t.state.reference, digest: head.digest, previousDigest: previous });
        const event: DigestEvent = {
          reference: t.state.reference,
          digest: head.digest,
          mediaType: head.mediaType,
          checkedAt: now,
        };
        if (previous) event.previousDigest = previous;
        for (const { listener } of [...t.listeners.values()]) this.deliver(listener, event);
      } else {
        this.metrics?.checks.inc({ registry: t.ref.registry, result: 'unchanged' });
      }
      this.followUp(t, head.digest !== previous, now);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      const now = this.clock.now();
      delete t.awaited;
      t.state.checkedAt = now;
      t.state.failures++;
      const firstFailure = t.state.error === undefined;
      t.state.error = err instanceof Error ? err.message : String(err);
      if (err instanceof RegistryError) t.state.errorCode = err.code;
      else delete t.state.errorCode;
      if (firstFailure) this.healthChanged(t);
      this.metrics?.checks.inc({ registry: t.ref.registry, result: 'error' });
      let delay = Math.min(
        t.state.intervalMs,
        backoffDelay(t.state.failures - 1, { baseMs: 5_000, maxMs: 5 * 60_000, jitter: 0.2 }),
      );
      if (err instanceof RegistryError && err.code === 'RATE_LIMITED') {
        const pause = err.retryAfterMs ?? 60_000;
        this.pausedUntil.set(t.ref.registry, Math.max(this.pausedUntil.get(t.ref.registry) ?? 0, now + pause));
        delay = Math.max(delay, pause);
      }
      t.state.nextCheckAt = now + delay;
      log.warn('digest check failed', {
        reference: t.state.reference,
        credentials: t.source.id,
        error: t.state.error,
        attempt: t.state.failures,
        retryInMs: delay,
      });
    } finally {
      t.inFlight = false;
      this.inFlight--;
      if (t.recheck) {
        t.recheck = false;
        if (!t.awaited) {
          const gap = this.options.minTriggerGapMs ?? 2_000;
          t.state.nextCheckAt = Math.min(t.state.nextCheckAt, this.clock.now() + gap);
        }
      }
    }
  }

  /**
   * After a check while a webhook's news is awaited: done when the announced digest (or, with
   * none announced, any new digest) is seen or the bound has passed; otherwise look again
   * after 50 ms, 100 ms, 200 ms… A failed check ends the wait: its own backoff takes over.
   */
  private followUp(t: Target, changed: boolean, now: number): void {
    const awaited = t.awaited;
    if (!awaited) return;
    const found = awaited.digest === undefined ? changed : t.state.digest === awaited.digest;
    const delay = Math.min(FOLLOW_UP_FIRST_MS * 2 ** awaited.looks, FOLLOW_UP_MAX_GAP_MS);
    if (found || now + delay > awaited.until) {
      delete t.awaited;
      return;
    }
    awaited.looks++;
    t.state.nextCheckAt = Math.min(t.state.nextCheckAt, now + delay);
  }

  private healthChanged(t: Target): void {
    for (const { onHealth } of [...t.listeners.values()]) {
      try {
        onHealth?.();
      } catch (err) {
        this.options.logger.error('digest health listener failed', {
          reference: t.state.reference,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  private deliver(listener: DigestListener, event: DigestEvent): void {
    try {
      listener(event);
    } catch (err) {
      this.options.logger.error('digest listener failed', {
        reference: event.reference,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}

/** A stable number in [0, 1) from a string (FNV-1a). */
function fraction(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}
