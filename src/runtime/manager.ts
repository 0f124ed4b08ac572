// The manager runs the pieces in the right order and stops them in reverse:
//   probe server -> informers (every replica keeps a warm cache, so a standby can take
//   over at once) -> leader election -> controllers and leader-only tasks (leader only).
// Losing leadership stops the controllers at once and ends run() with 'lost', so that the
// process can exit and be restarted clean (controller-runtime does the same).
import type { Controller } from './controller.ts';
import type { Informer } from './informer.ts';
import { keyOf, type KubeObject } from './kube-types.ts';
import type { LeaderElector } from './leaderelection.ts';
import type { Logger } from './logger.ts';
import type { ProbeServer } from './server.ts';

/** Whether an update is worth a reconcile; status-only updates are not. */
export type UpdatePredicate<T> = (oldObj: T, newObj: T) => boolean;

/**
 * Spec changes (generation), annotation changes (reconcile requests, approvals), labels,
 * and the start of deletion. A status write by the controller itself matches none of them,
 * so it does not wake the controller again.
 */
export function specOrMetadataChanged<T extends KubeObject>(oldObj: T, newObj: T): boolean {
  const a = oldObj.metadata ?? {};
  const b = newObj.metadata ?? {};
  return (
    a.generation !== b.generation ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {}) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    a.deletionTimestamp !== b.deletionTimestamp
  );
}

/** A task that runs only on the leader, until its signal aborts (cron schedules...). */
export type LeaderTask = (signal: AbortSignal) => void | Promise<void>;

interface Registration {
  controller: Controller;
  primary: Informer<KubeObject>[];
}

export interface ManagerOptions {
  logger: Logger;
  probes: ProbeServer;
  /** Absent: leader election disabled, this replica always reconciles. */
  elector?: LeaderElector;
}

export type RunOutcome = 'stopped' | 'lost';

export class Manager {
  private readonly options: ManagerOptions;
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly registrations: Registration[] = [];
  private readonly leaderTasks: LeaderTask[] = [];
  private leading = false;

  constructor(options: ManagerOptions) {
    this.options = options;
    options.probes.addHealthCheck('ping', () => undefined);
    options.probes.addReadyCheck('informers-synced', () => {
      const pending = this.informers.filter((i) => !i.hasSynced()).length;
      if (pending > 0) throw new Error(`${pending} informer(s) not synced`);
    });
  }

  addInformer<T extends KubeObject>(informer: Informer<T>): void {
    this.informers.push(informer);
  }

  /**
   * Registers a controller whose keys are the objects of `primary` (one informer per
   * watched namespace, or one for all): every add and delete, and every update that
   * `predicate` accepts, queues the object's key.
   */
  addController<T extends KubeObject>(
    controller: Controller,
    primary: Informer<T>[],
    predicate: UpdatePredicate<T> = specOrMetadataChanged,
  ): void {
    for (const informer of primary) {
      if (!this.informers.includes(informer)) this.addInformer(informer);
      informer.addHandlers({
        onAdd: (obj) => controller.enqueue(keyOf(obj)),
        onUpdate: (oldObj, newObj) => {
          if (predicate(oldObj, newObj)) controller.enqueue(keyOf(newObj));
        },
        onDelete: (obj) => controller.enqueue(keyOf(obj)),
      });
    }
    this.registrations.push({ controller, primary: primary });
  }

  addLeaderTask(task: LeaderTask): void {
    this.leaderTasks.push(task);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Runs until `signal` aborts ('stopped') or leadership is lost ('lost'). */
  async run(signal: AbortSignal): Promise<RunOutcome> {
    const log = this.options.logger;
    await Promise.all(this.informers.map((i) => i.start()));
    log.info('caches synced', { informers: this.informers.length });

    let outcome: RunOutcome = 'stopped';
    const elector = this.options.elector;
    if (!elector) {
      const leaderAbort = new AbortController();
      this.startLeading(leaderAbort.signal);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      leaderAbort.abort();
      await this.stopLeading();
    } else {
      await elector.run(signal, {
        onStartedLeading: (leaderSignal) => this.startLeading(leaderSignal),
        onStoppedLeading: (reason) => {
          if (reason === 'lost') outcome = 'lost';
        },
        onNewLeader: (identity) => log.info('leader observed', { leader: identity }),
      });
      await this.stopLeading();
    }
    await Promise.all(this.informers.map((i) => i.stop()));
    return outcome;
  }

  private startLeading(signal: AbortSignal): void {
    this.leading = true;
    // Work stops the moment leadership ends, before anything else is cleaned up.
    signal.addEventListener('abort', () => void this.stopLeading(), { once: true });
    for (const { controller, primary } of this.registrations) {
      for (const informer of primary) for (const key of informer.keys()) controller.enqueue(key);
      controller.start();
    }
    for (const task of this.leaderTasks) {
      Promise.resolve(task(signal)).catch((err: unknown) =>
        this.options.logger.error('leader task failed', { error: err instanceof Error ? err.message : String(err) }),
      );
    }
    this.options.logger.info('controllers started', { controllers: this.registrations.map((r) => r.controller.name) });
  }

  private stopping: Promise<void> | undefined;

  private stopLeading(): Promise<void> {
    if (!this.leading) return this.stopping ?? Promise.resolve();
    this.leading = false;
    this.stopping = Promise.all(this.registrations.map((r) => r.controller.stop())).then(() => {
      this.options.logger.info('controllers stopped');
    });
    return this.stopping;
  }
}
