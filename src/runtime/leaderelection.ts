// Leader election on a coordination.k8s.io Lease, with client-go's algorithm and defaults
// (lease 15 s, renew deadline 10 s, retry 2 s). client-node has no such helper.
//
//  - A candidate takes the lease when it is absent, free (no holder), or expired: its
//    holder has not renewed it for the lease duration. Expiry is measured on the local
//    clock from when this candidate last saw the record change, as client-go does, so
//    clock skew between nodes does not matter.
//  - Every write carries the resourceVersion read, so two candidates never both win: the
//    second gets 409 Conflict.
//  - The leader renews every retry period. If it cannot renew for the renew deadline, or
//    sees another holder, it stops leading at once.
//  - On shutdown the leader releases the lease (empty holder), so that a successor need
//    not wait for it to expire.
import type { KubeClient } from './kube-client.ts';
import { formatMicroTime } from './kube-types.ts';
import { isAlreadyExists, isConflict, isNotFound, errorMessage, toKubeError } from './errors.ts';
import { sleep, systemClock, type Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import { counter, gauge, type Registry } from './metrics.ts';

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/** Where the lease lives. Methods throw the API server's errors (409 on conflict). */
export interface LeaseStore {
  readonly description: string;
  get(signal: AbortSignal): Promise<StoredLease | undefined>;
  create(record: LeaseRecord, signal: AbortSignal): Promise<StoredLease>;
  update(record: LeaseRecord, resourceVersion: string, signal: AbortSignal): Promise<StoredLease>;
}

interface LeaseObject {
  metadata?: { resourceVersion?: string };
  spec?: LeaseRecord;
}

export class KubeLeaseStore implements LeaseStore {
  readonly description: string;
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
    this.description = `${namespace}/${name}`;
  }

  private path(withName: boolean): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
    return withName ? `${base}/${encodeURIComponent(this.name)}` : base;
  }

  private static toStored(obj: LeaseObject): StoredLease {
    return { record: obj.spec ?? {}, resourceVersion: obj.metadata?.resourceVersion ?? '' };
  }

  async get(signal: AbortSignal): Promise<StoredLease | undefined> {
    try {
      return KubeLeaseStore.toStored(await this.client.requestJson<LeaseObject>('GET', this.path(true), { signal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<StoredLease> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec: record,
    };
    return KubeLeaseStore.toStored(
      await this.client.requestJson<LeaseObject>('POST', this.path(false), { body, signal }),
    );
  }

  async update(record: LeaseRecord, resourceVersion: string, signal: AbortSignal): Promise<StoredLease> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, resourceVersion },
      spec: record,
    };
    return KubeLeaseStore.toStored(
      await this.client.requestJson<LeaseObject>('PUT', this.path(true), { body, signal }),
    );
  }
}

export interface LeaderElectionOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Release the lease when the run signal aborts (shutdown). */
  releaseOnCancel?: boolean;
  clock?: Clock;
  logger: Logger;
  registry?: Registry;
}

export interface LeaderCallbacks {
  /** Called when this candidate becomes leader; `signal` aborts when it stops leading. */
  onStartedLeading(signal: AbortSignal): void;
  /** Called when leading ends, by loss or by shutdown. */
  onStoppedLeading(reason: 'lost' | 'shutdown'): void;
  /** Called when the observed holder changes. */
  onNewLeader?(identity: string): void;
}

export class LeaderElector {
  readonly identity: string;
  private readonly store: LeaseStore;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly releaseOnCancel: boolean;
  private readonly clock: Clock;
  private readonly log: Logger;
  private observed: StoredLease | undefined;
  private observedAt = 0;
  private leading = false;
  /** When this replica last renewed (or took) the lease, on its own clock. */
  private lastRenewAt = 0;
  private lastHolder: string | undefined;
  private readonly metrics;

  constructor(options: LeaderElectionOptions) {
    this.store = options.store;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.releaseOnCancel = options.releaseOnCancel ?? true;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ lease: options.store.description, identity: options.identity });
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs)) {
      throw new Error('leader election needs lease duration > renew deadline > retry period');
    }
    const r = options.registry;
    this.metrics = r
      ? {
          leader: gauge(r, {
            name: 'leader_election_master_status',
            help: '1 while this replica holds the leader lease, else 0.',
            labelNames: ['name'] as const,
          }),
          transitions: counter(r, {
            name: 'patchline_leader_transitions_total',
            help: 'Times this replica started leading.',
            labelNames: ['name'] as const,
          }),
        }
      : undefined;
    this.metrics?.leader.set({ name: this.store.description }, 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Whether this replica may write as the leader now: it leads and renewed the lease within
   * the renew deadline. A replica that was paused (SIGSTOP, a long GC, a frozen VM) past the
   * deadline may already have been replaced — another replica takes over one lease duration
   * after the last renew it saw — so it writes nothing until its renew loop has looked again
   * (and, having lost the lease, stops).
   */
  holdsLease(): boolean {
    return this.leading && this.clock.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** Campaigns until leader, leads until the lease is lost or `signal` aborts. */
  async run(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(callbacks)) break;
      await sleep(this.nextAttemptIn(this.clock.now()), signal, this.clock);
    }
    if (signal.aborted) return;

    const leaderAbort = new AbortController();
    this.setLeading(true);
    this.log.info('started leading');
    callbacks.onStartedLeading(leaderAbort.signal);

    let lastRenew = this.clock.now();
    let reason: 'lost' | 'shutdown' = 'shutdown';
    while (!signal.aborted) {
      await sleep(this.retryPeriodMs, signal, this.clock);
      if (signal.aborted) break;
      const renewed = await this.tryAcquireOrRenew(callbacks);
      const now = this.clock.now();
      if (renewed) {
        lastRenew = now;
        continue;
      }
      const heldByOther = this.heldByOther(now);
      if (heldByOther || now - lastRenew >= this.renewDeadlineMs) {
        reason = 'lost';
        this.log.error('leader lease lost', {
          holder: this.observed?.record.holderIdentity ?? '',
          sinceLastRenewMs: now - lastRenew,
        });
        break;
      }
    }
    leaderAbort.abort();
    this.setLeading(false);
    if (reason === 'shutdown' && this.releaseOnCancel) await this.release();
    callbacks.onStoppedLeading(reason);
  }

  /**
   * A follower retries every retry period (with jitter, so candidates do not collide), but
   * no later than the moment the lease it observed expires: a dead leader is replaced one
   * lease duration after its last renew was seen, not up to a retry period later.
   */
  private nextAttemptIn(now: number): number {
    const retry = this.retryPeriodMs * (1 + Math.random() * 0.2);
    if (!this.observed?.record.holderIdentity) return retry;
    const untilExpiry = this.observedAt + this.leaseDurationOf(this.observed.record) - now;
    return untilExpiry >= 0 && untilExpiry < retry ? untilExpiry + 1 : retry;
  }

  private leaseDurationOf(record: LeaseRecord): number {
    return record.leaseDurationSeconds !== undefined ? record.leaseDurationSeconds * 1000 : this.leaseDurationMs;
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.metrics?.leader.set({ name: this.store.description }, leading ? 1 : 0);
    if (leading) this.metrics?.transitions.inc({ name: this.store.description });
  }

  private heldByOther(now: number): boolean {
    const holder = this.observed?.record.holderIdentity;
    return !!holder && holder !== this.identity && !this.expired(now);
  }

  private expired(now: number): boolean {
    return !this.observed || this.observedAt + this.leaseDurationOf(this.observed.record) <= now;
  }

  private observe(lease: StoredLease, now: number, callbacks: LeaderCallbacks): void {
    const changed =
      !this.observed ||
      this.observed.resourceVersion !== lease.resourceVersion ||
      this.observed.record.holderIdentity !== lease.record.holderIdentity ||
      this.observed.record.renewTime !== lease.record.renewTime;
    this.observed = lease;
    if (changed) this.observedAt = now;
    const holder = lease.record.holderIdentity ?? '';
    if (holder && holder !== this.lastHolder) {
      this.lastHolder = holder;
      callbacks.onNewLeader?.(holder);
    }
  }

  /** One attempt to take or renew the lease; true when this candidate holds it now. */
  private async tryAcquireOrRenew(callbacks: LeaderCallbacks): Promise<boolean> {
    const signal = AbortSignal.timeout(Math.max(1000, this.renewDeadlineMs / 2));
    const now = this.clock.now();
    const fresh: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: formatMicroTime(now),
      renewTime: formatMicroTime(now),
      leaseTransitions: 0,
    };
    try {
      const current = await this.store.get(signal);
      if (!current) {
        this.observe(await this.store.create(fresh, signal), now, callbacks);
        this.lastRenewAt = now;
        return true;
      }
      this.observe(current, now, callbacks);
      const holder = current.record.holderIdentity ?? '';
      if (holder && holder !== this.identity && !this.expired(now)) return false;
      const ours = holder === this.identity;
      const record: LeaseRecord = {
        ...fresh,
        acquireTime: ours ? (current.record.acquireTime ?? fresh.acquireTime) : fresh.acquireTime,
        leaseTransitions: (current.record.leaseTransitions ?? 0) + (ours ? 0 : 1),
      };
      this.observe(await this.store.update(record, current.resourceVersion, signal), now, callbacks);
      // Counted from before the request: others count the lease from when they see it, later.
      this.lastRenewAt = now;
      return true;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) {
        this.log.debug('lost a race for the lease');
      } else {
        this.log.warn('cannot read or write the leader lease', { error: errorMessage(toKubeError(err)) });
      }
      return false;
    }
  }

  /** Gives the lease up so that another candidate can take it at once. */
  private async release(): Promise<void> {
    const current = this.observed;
    if (!current || current.record.holderIdentity !== this.identity) return;
    const now = formatMicroTime(this.clock.now());
    try {
      await this.store.update(
        {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: current.record.leaseTransitions ?? 0,
        },
        current.resourceVersion,
        AbortSignal.timeout(5000),
      );
      this.log.info('released the leader lease');
    } catch (err) {
      this.log.warn('could not release the leader lease; it will expire', { error: errorMessage(toKubeError(err)) });
    }
  }
}
