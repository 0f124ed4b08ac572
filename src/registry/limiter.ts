// A registry's budget: at most N requests in flight, and at most M requests per minute
// (a token bucket refilled continuously, holding at most a minute's worth; M may be Infinity:
// no per-minute cap). Every HTTP request to the registry, token requests included, takes its share.
import { sleep } from '../runtime/clock.ts';

export interface LimiterOptions {
  maxConcurrency: number;
  requestsPerMinute: number;
  now?: () => number;
}

export class RegistryLimiter {
  private readonly options: LimiterOptions;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private tokens: number;
  private refilledAt: number;

  constructor(options: LimiterOptions) {
    this.options = options;
    this.tokens = options.requestsPerMinute;
    this.refilledAt = this.now();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private refill(): void {
    if (this.options.requestsPerMinute === Infinity) return; // tokens stay Infinity
    const now = this.now();
    const perMs = this.options.requestsPerMinute / 60_000;
    this.tokens = Math.min(this.options.requestsPerMinute, this.tokens + (now - this.refilledAt) * perMs);
    this.refilledAt = now;
  }

  /** Requests still allowed right now. */
  available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  /** Spends budget for a request made outside acquire() (token requests). */
  count(): void {
    this.refill();
    this.tokens -= 1;
  }

  /** Waits for a slot and budget; returns the function that frees the slot. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    while (this.inFlight >= this.options.maxConcurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.inFlight++;
    try {
      for (;;) {
        this.refill();
        if (this.tokens >= 1) break;
        const waitMs = Math.ceil((1 - this.tokens) / (this.options.requestsPerMinute / 60_000));
        if (!(await sleep(waitMs, signal))) throw signal?.reason ?? new Error('aborted');
      }
      this.tokens -= 1;
    } catch (err) {
      this.release();
      throw err;
    }
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.release();
      }
    };
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }
}
