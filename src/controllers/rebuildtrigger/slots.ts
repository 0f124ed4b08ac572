// The global limit on builds in flight. A base shared by hundreds of triggers makes them all
// ready at once; only `limit` build at a time, the others wait in a queue served in the order
// they became ready (then by name, so that the order is total). When a build ends, the next
// waiting triggers are woken. Which triggers hold a slot is derived from their status (a build
// Starting, Queued or Running), so the count survives a restart or a failover.
import type { Registry } from '../../runtime/metrics.ts';
import { gauge } from '../../runtime/metrics.ts';

export interface SlotState {
  available: boolean;
  position?: number;
  waiting?: number;
  limit: number;
}

export class BuildSlots {
  readonly limit: number;
  private readonly holders = new Set<string>();
  private readonly waiting = new Map<string, number>(); // key -> ready since (ms)
  private readonly wake: (key: string) => void;
  private readonly metrics;

  constructor(limit: number, wake: (key: string) => void, registry?: Registry) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error('the build limit must be at least 1');
    this.limit = limit;
    this.wake = wake;
    this.metrics = registry
      ? {
          inFlight: gauge(registry, {
            name: 'patchline_builds_in_flight',
            help: 'Builds started and not finished.',
            labelNames: [] as const,
          }),
          queued: gauge(registry, {
            name: 'patchline_builds_queued',
            help: 'Triggers ready to build, waiting for a slot.',
            labelNames: [] as const,
          }),
          limit: gauge(registry, {
            name: 'patchline_builds_limit',
            help: 'The limit on builds in flight.',
            labelNames: [] as const,
          }),
        }
      : undefined;
    this.metrics?.limit.set(limit);
  }

  /** Aligns the slot a trigger holds with its status. */
  observe(key: string, inFlight: boolean): void {
    if (inFlight) {
      this.holders.add(key);
      this.waiting.delete(key);
    } else if (this.holders.has(key)) {
      this.release(key);
    }
    this.report();
  }

  /** Whether the trigger may start a build now; if not, its place in the queue (which it joins). */
  check(key: string, readySince: number): SlotState {
    if (this.holders.has(key)) return { available: true, limit: this.limit };
    if (!this.waiting.has(key)) this.waiting.set(key, readySince);
    const free = this.limit - this.holders.size;
    const order = this.order();
    const position = order.indexOf(key) + 1;
    this.report();
    if (free > 0 && position <= free) return { available: true, limit: this.limit };
    return { available: false, position, waiting: order.length, limit: this.limit };
  }

  /** Takes a slot for a build about to start; false if none is free for this trigger. */
  take(key: string): boolean {
    if (this.holders.has(key)) return true;
    const free = this.limit - this.holders.size;
    if (free <= 0) return false;
    const order = this.order();
    const position = order.indexOf(key);
    if (position >= free) return false;
    this.waiting.delete(key);
    this.holders.add(key);
    this.report();
    return true;
  }

  /** Frees the trigger's slot and wakes the first waiting triggers. */
  release(key: string): void {
    if (!this.holders.delete(key)) return;
    const free = this.limit - this.holders.size;
    for (const next of this.order().slice(0, free)) this.wake(next);
    this.report();
  }

  /** The trigger is gone, or no longer wants to build. */
  forget(key: string): void {
    this.waiting.delete(key);
    this.release(key);
    this.report();
  }

  /** Leaves the queue without holding a slot (its change was built elsewhere or went away). */
  leaveQueue(key: string): void {
    if (this.waiting.delete(key)) this.report();
  }

  stats(): { inFlight: number; queued: number } {
    return { inFlight: this.holders.size, queued: this.waiting.size };
  }

  private order(): string[] {
    return [...this.waiting].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k);
  }

  private report(): void {
    this.metrics?.inFlight.set(this.holders.size);
    this.metrics?.queued.set(this.waiting.size);
  }
}
