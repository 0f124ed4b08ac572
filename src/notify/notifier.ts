// Delivers notices in the background: a bounded queue, one delivery at a time, a few retries
// for what may succeed later (network errors, 5xx, 429 with the wait asked for), never on the
// path of a reconcile. A notice that cannot be delivered is logged (without its address: a
// Slack webhook URL is a secret) and counted; it is not worth holding the write-back for.
import { sleep } from '../runtime/clock.ts';
import { callService, ServiceError } from '../runtime/json-call.ts';
import type { Logger } from '../runtime/logger.ts';
import { counter, type Registry } from '../runtime/metrics.ts';
import { genericBody, signatureHeaders, slackBody, type Notice } from './notices.ts';

export interface NotifyTarget {
  secretRef: { name: string };
  format?: 'generic' | 'slack';
}

export interface NotifierDeps {
  /** A Secret's data (address, token). */
  secrets: (namespace: string, name: string, signal?: AbortSignal) => Promise<Record<string, string>>;
  log: Logger;
  registry?: Registry;
  timeoutMs?: number;
  /** Waits between attempts (tests make them short). */
  backoffMs?: readonly number[];
  now?: () => Date;
}

const QUEUE_LIMIT = 1000;
const MAX_WAIT_MS = 60_000;

interface Delivery {
  namespace: string;
  target: NotifyTarget;
  notice: Notice;
}

export class Notifier {
  private readonly deps: NotifierDeps;
  private readonly queue: Delivery[] = [];
  private running: Promise<void> | undefined;
  private readonly results;

  constructor(deps: NotifierDeps) {
    this.deps = deps;
    this.results = deps.registry
      ? counter(deps.registry, {
          name: 'patchline_notifications_total',
          help: 'Outbound notices, by format and result (sent, failed, dropped: the queue was full).',
          labelNames: ['format', 'result'] as const,
        })
      : undefined;
  }

  /** Queues a notice; never throws and never waits. */
  send(namespace: string, target: NotifyTarget, notice: Notice): void {
    const format = target.format ?? 'generic';
    if (this.queue.length >= QUEUE_LIMIT) {
      this.results?.inc({ format, result: 'dropped' });
      this.deps.log.warn('notice dropped: the queue is full', { event: notice.event, writeBack: notice.writeBack });
      return;
    }
    this.queue.push({ namespace, target, notice });
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves when every queued notice was delivered or given up (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    for (let d = this.queue.shift(); d; d = this.queue.shift()) await this.deliver(d);
  }

  private async deliver(d: Delivery): Promise<void> {
    const format = d.target.format ?? 'generic';
    const fields = {
      event: d.notice.event,
      writeBack: d.notice.writeBack,
      secret: `${d.namespace}/${d.target.secretRef.name}`,
    };
    const backoff = this.deps.backoffMs ?? [1_000, 5_000];
    for (let attempt = 0; ; attempt++) {
      try {
        await this.post(d);
        this.results?.inc({ format, result: 'sent' });
        return;
      } catch (err) {
        const retryable = err instanceof ServiceError && err.kind !== 'rejected';
        if (!retryable || attempt >= backoff.length) {
          this.results?.inc({ format, result: 'failed' });
          this.deps.log.warn('notice not delivered', {
            ...fields,
            error: err instanceof Error ? err.message : String(err),
          });
          return;
        }
        const asked = err instanceof ServiceError ? err.retryAfterMs : undefined;
        await sleep(Math.min(asked ?? backoff[attempt]!, MAX_WAIT_MS));
      }
    }
  }

  private async post(d: Delivery): Promise<void> {
    const data = await this.deps.secrets(d.namespace, d.target.secretRef.name).catch((err: unknown) => {
      throw new ServiceError('rejected', `notify Secret: ${err instanceof Error ? err.message : String(err)}`);
    });
    const address = data.address;
    if (!address || !/^https?:\/\/[^\s]+$/.test(address))
      throw new ServiceError('rejected', `the notify Secret ${d.target.secretRef.name} has no http(s) "address"`);
    const slack = d.target.format === 'slack';
    const body = slack ? slackBody(d.notice) : genericBody(d.notice);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (!slack) {
      headers['x-patchline-event'] = d.notice.event;
      headers['x-patchline-delivery'] = d.notice.id;
      if (data.token)
        Object.assign(headers, signatureHeaders(data.token, body, (this.deps.now ?? (() => new Date()))()));
    }
    // The service name is the host only: the path of a Slack webhook is its secret.
    const res = await callService(address, {
      method: 'POST',
      headers,
      rawBody: body,
      service: `notice receiver ${new URL(address).host}`,
      timeoutMs: this.deps.timeoutMs ?? 10_000,
    });
    if (res.status >= 300)
      throw new ServiceError('rejected', `notice receiver ${new URL(address).host} answered HTTP ${res.status}`, {
        status: res.status,
      });
  }
}
