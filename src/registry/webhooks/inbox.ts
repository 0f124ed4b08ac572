// The webhook inbox: how a replica that is not the leader accepts a registry notification or
// a build callback instead of refusing it.
//
// Only the leader checks digests and commits build outcomes, but a Service spreads
// deliveries over every replica, and senders that do not retry (Docker Hub, Quay, GitHub)
// would lose what a follower refused. A follower authenticates and parses the delivery as
// the leader would, then adds it as one key of a ConfigMap in the operator's namespace (a
// JSON merge patch, so concurrent writers never conflict) and answers 202 only once the
// API server has stored it. The leader watches that ConfigMap, hands each entry to the same
// code a direct delivery reaches, and removes the entries it handled.
//
// Why a record in the API server rather than forwarding to the leader: it needs no address
// discovery, no replica-to-replica TLS, and it survives a leader change — an entry written
// while the old leader is dead and its lease not yet expired is handled by the next leader.
// Entries are small (a notice is a reference; a callback body is capped), the leader drains
// them as they arrive, and handling is idempotent (a notice only says "look now"; a callback
// for a build attempt already recorded changes nothing), so a leader that dies between
// handling and removing costs a repeat, not a loss.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from '../../runtime/kube-client.ts';
import type { KubeObject } from '../../runtime/kube-types.ts';
import { isAlreadyExists, isNotFound, errorMessage, toKubeError } from '../../runtime/errors.ts';
import { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/logger.ts';
import { counter, type Registry } from '../../runtime/metrics.ts';
import type { PushNotice } from '../watcher.ts';

export type InboxEntry =
  | { kind: 'notices'; receiver: string; notices: PushNotice[] }
  | { kind: 'callback'; buildId: string; body: string; signature?: string };

/** What the leader does with an entry; a callback answered with a 5xx is tried again later. */
export interface InboxHandlers {
  notices(receiver: string, notices: PushNotice[]): void;
  callback(buildId: string, body: Buffer, signature: string | undefined): Promise<{ status: number; message: string }>;
}

/** The follower's side: store an entry or throw. */
export interface InboxWriter {
  put(entry: InboxEntry): Promise<void>;
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** An entry larger than this is refused (503): a callback body is a few hundred bytes. */
const MAX_ENTRY_BYTES = 64 * 1024;
/** A notice list longer than this is cut: one delivery rarely names more than a few. */
const MAX_NOTICES = 100;
const RETRY_MS = 5_000;
const MAX_ATTEMPTS = 12;

class InboxFull extends Error {}

/** The entry an inbox value holds, or undefined when it is not one (checked field by field). */
export function parseEntry(value: string): InboxEntry | undefined {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const o = json as Record<string, unknown>;
  const str = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
  if (o.kind === 'notices' && str(o.receiver, 253) && Array.isArray(o.notices)) {
    const notices: PushNotice[] = [];
    for (const n of o.notices.slice(0, MAX_NOTICES) as unknown[]) {
      if (typeof n !== 'object' || n === null) return undefined;
      const x = n as Record<string, unknown>;
      if (!str(x.repository, 255)) return undefined;
      for (const f of ['registry', 'tag', 'digest'] as const)
        if (x[f] !== undefined && !str(x[f], 255)) return undefined;
      notices.push({
        repository: x.repository,
        ...(x.registry !== undefined ? { registry: x.registry as string } : {}),
        ...(x.tag !== undefined ? { tag: x.tag as string } : {}),
        ...(x.digest !== undefined ? { digest: x.digest as string } : {}),
      });
    }
    return { kind: 'notices', receiver: o.receiver, notices };
  }
  if (o.kind === 'callback' && str(o.buildId, 63) && str(o.body, MAX_ENTRY_BYTES)) {
    if (o.signature !== undefined && !str(o.signature, 256)) return undefined;
    return {
      kind: 'callback',
      buildId: o.buildId,
      body: o.body,
      ...(o.signature !== undefined ? { signature: o.signature } : {}),
    };
  }
  return undefined;
}

/** A ConfigMap key that sorts by time of arrival and never collides. */
function newKey(now: number): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
}

export interface WebhookInboxOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  logger: Logger;
  registry?: Registry;
}

export class WebhookInbox implements InboxWriter {
  private readonly options: WebhookInboxOptions;
  private readonly entries;

  constructor(options: WebhookInboxOptions) {
    this.options = options;
    this.entries = options.registry
      ? counter(options.registry, {
          name: 'patchline_webhook_inbox_entries_total',
          help: 'Webhook deliveries passed from a follower to the leader through the inbox, by stage (queued, handled, dropped).',
          labelNames: ['stage'] as const,
        })
      : undefined;
  }

  private get path(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.options.namespace)}/configmaps`;
  }

  private patch(data: Record<string, string | null>): Promise<unknown> {
    return this.options.client.requestJson('PATCH', `${this.path}/${encodeURIComponent(this.options.name)}`, {
      body: { data },
      contentType: 'application/merge-patch+json',
    });
  }

  /** Stores an entry; resolves once the API server has it. */
  async put(entry: InboxEntry): Promise<void> {
    const value = JSON.stringify(entry);
    if (value.length > MAX_ENTRY_BYTES) throw new InboxFull(`the delivery is larger than ${MAX_ENTRY_BYTES} bytes`);
    const data = { [newKey(Date.now())]: value };
    try {
      await this.patch(data);
    } catch (err) {
      if (!isNotFound(err)) throw toKubeError(err);
      try {
        await this.options.client.requestJson('POST', this.path, {
          body: {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: this.options.name,
              namespace: this.options.namespace,
              labels: { 'app.kubernetes.io/managed-by': 'patchline', 'app.kubernetes.io/component': 'webhook-inbox' },
            },
            data,
          },
        });
      } catch (createErr) {
        // Another follower created it first: add to it.
        if (!isAlreadyExists(createErr)) throw toKubeError(createErr);
        await this.patch(data);
      }
    }
    this.entries?.inc({ stage: 'queued' });
  }

  /** The leader's side: drains the inbox until `signal` aborts (leadership ends). */
  async serve(signal: AbortSignal, handlers: InboxHandlers): Promise<void> {
    const drainer = new InboxDrainer({
      remove: (keys) => this.remove(keys),
      handlers,
      log: this.options.logger,
      count: (stage) => this.entries?.inc({ stage }),
    });
    const informer = new Informer<ConfigMap>(this.options.client, {
      name: 'webhook-inbox',
      path: this.path,
      fieldSelector: `metadata.name=${this.options.name}`,
      logger: this.options.logger,
      ...(this.options.registry ? { registry: this.options.registry } : {}),
    });
    informer.addHandlers({
      onAdd: (cm) => drainer.drain(cm.data ?? {}),
      onUpdate: (_old, cm) => drainer.drain(cm.data ?? {}),
    });
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([informer.start(), stopped]);
    await stopped;
    drainer.stop();
    await informer.stop();
  }

  /** Removes handled entries (merge patch: null deletes a key). */
  async remove(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.patch(Object.fromEntries(keys.map((k) => [k, null])));
    } catch (err) {
      if (!isNotFound(err)) throw toKubeError(err);
    }
  }
}

export interface InboxDrainerOptions {
  /** Removes handled entries from the inbox. */
  remove(keys: string[]): Promise<void>;
  handlers: InboxHandlers;
  log: Logger;
  count?(stage: 'handled' | 'dropped'): void;
  /** Before a callback answered with a 5xx is tried again; default 5 s. */
  retryMs?: number;
}

/** Hands each entry to its handler once, removes what was handled, retries 5xx callbacks. */
export class InboxDrainer {
  /** Keys being handled or handled and not yet seen removed: never handled twice by this leader. */
  private readonly taken = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private latest: Record<string, string> = {};
  private stopped = false;

  private readonly options: InboxDrainerOptions;
  private readonly handlers: InboxHandlers;
  private readonly log: Logger;

  constructor(options: InboxDrainerOptions) {
    this.options = options;
    this.handlers = options.handlers;
    this.log = options.log;
  }

  private count(stage: 'handled' | 'dropped'): void {
    this.options.count?.(stage);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  drain(data: Record<string, string>): void {
    if (this.stopped) return;
    this.latest = data;
    for (const k of this.taken) if (!(k in data)) this.taken.delete(k);
    const fresh = Object.keys(data)
      .filter((k) => !this.taken.has(k))
      .sort();
    if (fresh.length === 0) return;
    for (const k of fresh) this.taken.add(k);
    void this.handle(fresh, data);
  }

  private async handle(keys: string[], data: Record<string, string>): Promise<void> {
    const done: string[] = [];
    const later: string[] = [];
    for (const key of keys) {
      const outcome = await this.handleOne(key, data[key]!);
      (outcome === 'retry' ? later : done).push(key);
    }
    try {
      await this.options.remove(done);
    } catch (err) {
      // Left in place: handled again by this leader's next drain or the next leader (idempotent).
      for (const k of done) this.taken.delete(k);
      this.log.warn('webhook inbox: cannot remove handled entries', { error: errorMessage(err) });
    }
    if (later.length > 0 && !this.stopped) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        for (const k of later) this.taken.delete(k);
        this.drain(this.latest);
      }, this.options.retryMs ?? RETRY_MS);
      timer.unref();
      this.timers.add(timer);
    }
  }

  private async handleOne(key: string, value: string): Promise<'done' | 'retry'> {
    const entry = parseEntry(value);
    if (!entry) {
      this.log.warn('webhook inbox: an entry that is not one was dropped', { key });
      this.count('dropped');
      return 'done';
    }
    if (entry.kind === 'notices') {
      this.handlers.notices(entry.receiver, entry.notices);
      this.count('handled');
      return 'done';
    }
    const answer = await this.handlers
      .callback(entry.buildId, Buffer.from(entry.body, 'base64'), entry.signature)
      .catch((err: unknown) => ({ status: 500, message: errorMessage(err) }));
    if (answer.status < 500) {
      this.count('handled');
      return 'done';
    }
    const attempts = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempts);
    if (attempts < MAX_ATTEMPTS) return 'retry';
    this.attempts.delete(key);
    this.log.error('webhook inbox: a build callback could not be recorded; dropped', {
      build: entry.buildId,
      attempts,
      reason: answer.message,
    });
    this.count('dropped');
    return 'done';
  }
}
