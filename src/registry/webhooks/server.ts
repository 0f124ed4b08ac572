// The registry webhook endpoint: POST /hooks/<receiver>[/<secret path token>]; and, when
// enabled, build services' callbacks: POST /callbacks/builds/<build id> (verified by the
// callback sink against the trigger's own key; see controllers/rebuildtrigger/callbacks.ts).
//
// Each receiver has a format and an authentication: a bearer token, basic credentials, a
// static header (ACR's custom headers), an HMAC-SHA256 signature of the body (GitHub, the
// generic format), or a secret path token for senders that cannot authenticate (Docker Hub,
// Quay). Secrets compare in constant time. Bodies are size-limited, receivers are
// rate-limited, and every refusal is a 4xx with a short reason; nothing a sender does can
// crash the operator or make it write anything. A webhook only says "look now": matching
// references are checked against the registry at once.
//
// Only the leader runs the checks. Every replica accepts deliveries: a follower
// authenticates and parses them as the leader would, then passes them on through the
// webhook inbox (inbox.ts) and answers 202 once they are stored; without an inbox (leader
// election off: this replica always leads) there is nothing to pass on.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../runtime/logger.ts';
import { counter, type Registry } from '../../runtime/metrics.ts';
import type { PushNotice } from '../watcher.ts';
import { PayloadError, parsePayload, type ParsedPayload, type WebhookFormat } from './formats.ts';
import { close, listen } from '../../runtime/listen.ts';
import type { InboxEntry, InboxWriter } from './inbox.ts';

/** A secret read when needed (from a mounted file), so that rotation needs no restart. */
export type SecretValue = () => string;

export type ReceiverAuth =
  | { type: 'bearer'; token: SecretValue }
  | { type: 'basic'; username: string; password: SecretValue }
  | { type: 'header'; header: string; value: SecretValue }
  | { type: 'hmac'; key: SecretValue; header?: string }
  | { type: 'path'; token: SecretValue };

export interface Receiver {
  name: string;
  format: WebhookFormat;
  /** Registry host to use for this receiver's notices, overriding what payloads say. */
  registry?: string;
  auth: ReceiverAuth;
}

/** Receives build callbacks; answers with an HTTP status and a short message. */
export interface CallbackSink {
  receive(buildId: string, body: Buffer, signature: string | undefined): Promise<{ status: number; message: string }>;
  /** A follower's check before passing a callback on: undefined when authentic and well formed, else the refusal. */
  check(
    buildId: string,
    body: Buffer,
    signature: string | undefined,
  ): Promise<{ status: number; message: string } | undefined>;
}

export interface NoticeSink {
  checkNow(notice: PushNotice): number;
}

export interface WebhookServerOptions {
  host: string;
  port: number;
  receivers: Receiver[];
  sink: NoticeSink;
  /** Build callbacks, when enabled. */
  callbacks?: CallbackSink;
  logger: Logger;
  registry?: Registry;
  /** Largest body accepted; default 1 MiB. */
  maxBodyBytes?: number;
  /** Per receiver; default 10 per second with bursts of 50. */
  requestsPerSecond?: number;
  burst?: number;
  tls?: { cert: string; key: string };
  /** Whether this replica runs the checks; others pass deliveries on through `inbox`. */
  isLeader?: () => boolean;
  /** Where a follower stores deliveries for the leader; absent, a follower answers 503. */
  inbox?: InboxWriter;
  now?: () => number;
}

/** Limits of the receiver when the configuration file does not set them. */
export const WEBHOOK_DEFAULTS = { maxBodyBytes: 1024 * 1024, requestsPerSecond: 10, burst: 50 } as const;

const HMAC_HEADERS: Partial<Record<WebhookFormat, string>> = {
  github: 'x-hub-signature-256',
  generic: 'x-patchline-signature',
};

class Refusal extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  // Compare equal lengths only (timingSafeEqual requires it); the length itself is no secret.
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class WebhookServer {
  private readonly options: WebhookServerOptions;
  private readonly receivers = new Map<string, Receiver>();
  private readonly buckets = new Map<string, Bucket>();
  private server: Server | undefined;
  private readonly requests;

  constructor(options: WebhookServerOptions) {
    this.options = options;
    for (const r of options.receivers) this.receivers.set(r.name, r);
    this.requests = options.registry
      ? counter(options.registry, {
          name: 'patchline_webhook_requests_total',
          help: 'Registry webhook requests, by receiver and status code.',
          labelNames: ['receiver', 'code'] as const,
        })
      : undefined;
  }

  async start(): Promise<AddressInfo> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.handle(req, res);
    };
    const server = this.options.tls
      ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key }, handler)
      : createHttpServer(handler);
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.maxHeadersCount = 100;
    this.server = server;
    return listen(server, this.options.host, this.options.port);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await close(server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Who the request was for, once known: the label of its metric and log lines.
    const route = { receiver: '-' };
    try {
      const parts = pathSegments(req.url);
      const answer =
        parts[0] === 'callbacks' && this.options.callbacks
          ? await this.buildCallback(req, parts, this.options.callbacks, route)
          : await this.registryNotification(req, parts, route);
      this.reply(res, route.receiver, answer.status, answer.body);
    } catch (err) {
      this.refuse(res, route.receiver, err);
    }
  }

  private leading(): boolean {
    return !this.options.isLeader || this.options.isLeader();
  }

  /** A follower stores an authenticated delivery for the leader; it answers 202 only once stored. */
  private async passOn(entry: InboxEntry): Promise<void> {
    const inbox = this.options.inbox;
    if (!inbox) throw new Refusal(503, 'this replica is not the leader; retry', { 'retry-after': '5' });
    try {
      await inbox.put(entry);
    } catch (err) {
      // The sender's retry (or the next poll) is the fallback; say why in the log.
      this.options.logger.warn('registry webhook: cannot pass a delivery on to the leader', {
        kind: entry.kind,
        error: err instanceof Error ? err.message : String(err),
      });
      throw new Refusal(503, 'cannot accept the delivery now; retry', { 'retry-after': '5' });
    }
  }

  /** POST /callbacks/builds/<id>: a build service reporting on a build (authenticated by the sink). */
  private async buildCallback(
    req: IncomingMessage,
    parts: string[],
    callbacks: CallbackSink,
    route: { receiver: string },
  ): Promise<Answer> {
    route.receiver = 'callbacks';
    if (parts[1] !== 'builds' || parts.length !== 3) throw new Refusal(404, 'not found');
    if (req.method !== 'POST') throw new Refusal(405, 'use POST', { allow: 'POST' });
    // No shared budget before authentication: forged callbacks (unknown build ids, bad
    // signatures) are refused cheaply by the sink, and must not use up the real builds' budget.
    const body = await this.readBody(req);
    const buildId = parts[2]!;
    const signature = headerValue(req, 'x-patchline-signature');
    if (!this.leading()) {
      const refused = await callbacks.check(buildId, body, signature);
      if (refused) throw new Refusal(refused.status, refused.message);
      await this.passOn({
        kind: 'callback',
        buildId,
        body: body.toString('base64'),
        ...(signature !== undefined ? { signature } : {}),
      });
      return { status: 202, body: { message: 'accepted' } };
    }
    const answer = await callbacks.receive(buildId, body, signature);
    if (answer.status >= 400) throw new Refusal(answer.status, answer.message);
    return { status: answer.status, body: { message: answer.message } };
  }

  /** POST /hooks/<receiver>[/<token>]: a registry's push notification, authenticated, parsed, then checked now. */
  private async registryNotification(
    req: IncomingMessage,
    parts: string[],
    route: { receiver: string },
  ): Promise<Answer> {
    if (parts[0] !== 'hooks' || parts.length < 2 || parts.length > 3) throw new Refusal(404, 'not found');
    const receiver = this.receivers.get(parts[1]!);
    if (!receiver) throw new Refusal(404, 'not found');
    route.receiver = receiver.name;
    if (req.method !== 'POST') throw new Refusal(405, 'use POST', { allow: 'POST' });
    // Authenticate first, then rate-limit the authenticated sender: forged requests are
    // refused without spending the budget of the receiver they pretend to be. Credentials in
    // headers or the path are checked before the body is read; a signature needs the body.
    if (receiver.auth.type !== 'hmac') this.authenticate(receiver, req, undefined, parts[2]);
    const body = await this.readBody(req);
    if (receiver.auth.type === 'hmac') this.authenticate(receiver, req, body, parts[2]);
    this.takeToken(receiver.name);
    const parsed = parseNotification(receiver, body, headerValue(req, 'x-github-event'));
    if (parsed.validationCode) return { status: 200, body: { validationResponse: parsed.validationCode } };
    if (parsed.skipped) {
      this.options.logger.warn('registry webhook: notices left out', {
        receiver: receiver.name,
        skipped: parsed.skipped.slice(0, 20),
      });
    }
    const notices = receiver.registry
      ? parsed.notices.map((n) => ({ ...n, registry: receiver.registry }))
      : parsed.notices;
    const skipped = parsed.skipped ? { skipped: parsed.skipped.length } : {};
    if (!this.leading()) {
      if (notices.length > 0) await this.passOn({ kind: 'notices', receiver: receiver.name, notices });
      this.options.logger.debug('registry webhook passed on to the leader', {
        receiver: receiver.name,
        notices: notices.length,
      });
      return { status: 202, body: { notices: notices.length, queued: true, ...skipped } };
    }
    const matched = this.deliver(receiver.name, notices);
    return { status: 202, body: { notices: notices.length, matched, ...skipped } };
  }

  /** Hands notices to the watcher, directly or from the inbox; returns how many references matched. */
  deliver(receiver: string, notices: PushNotice[]): number {
    let matched = 0;
    for (const notice of notices) matched += this.options.sink.checkNow(notice);
    // Registries also report pulls (a digest check is one): those carry no notice, and at a
    // line per check they would drown the log.
    const level = notices.length > 0 ? 'info' : 'debug';
    this.options.logger[level]('registry webhook', {
      receiver,
      notices: notices.map((n) => `${n.registry ?? '*'}/${n.repository}${n.tag ? `:${n.tag}` : ''}`).slice(0, 20),
      matched,
    });
    return matched;
  }

  /** A refusal answers with its status (logged when it is an authentication failure or ours); anything else is a 500. */
  private refuse(res: ServerResponse, receiver: string, err: unknown): void {
    if (err instanceof Refusal) {
      if (err.status === 401 || err.status >= 500) {
        this.options.logger.warn('registry webhook refused', { receiver, status: err.status, reason: err.message });
      }
      this.reply(res, receiver, err.status, { error: err.message }, err.headers);
      return;
    }
    this.options.logger.error('registry webhook failed', {
      receiver,
      error: err instanceof Error ? err.message : String(err),
    });
    this.reply(res, receiver, 500, { error: 'internal error' });
  }

  private reply(
    res: ServerResponse,
    receiver: string,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    this.requests?.inc({ receiver, code: String(status) });
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  /** Token bucket per receiver. */
  private takeToken(name: string): void {
    const rate = this.options.requestsPerSecond ?? WEBHOOK_DEFAULTS.requestsPerSecond;
    const burst = this.options.burst ?? WEBHOOK_DEFAULTS.burst;
    const now = (this.options.now ?? Date.now)();
    const b = this.buckets.get(name) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(name, b);
    if (b.tokens < 1)
      throw new Refusal(429, 'too many requests', { 'retry-after': String(Math.ceil((1 - b.tokens) / rate)) });
    b.tokens -= 1;
  }

  private readBody(req: IncomingMessage): Promise<Buffer> {
    const max = this.options.maxBodyBytes ?? WEBHOOK_DEFAULTS.maxBodyBytes;
    const declared = Number(headerValue(req, 'content-length') ?? NaN);
    if (declared > max) {
      req.resume();
      return Promise.reject(new Refusal(413, `body larger than ${max} bytes`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          req.removeAllListeners('data');
          req.resume();
          reject(new Refusal(413, `body larger than ${max} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', () => reject(new Refusal(400, 'the request was cut off')));
    });
  }

  private authenticate(
    receiver: Receiver,
    req: IncomingMessage,
    body: Buffer | undefined,
    pathToken: string | undefined,
  ): void {
    const auth = receiver.auth;
    const unauthorized = (scheme?: string): Refusal =>
      new Refusal(
        401,
        'not authenticated',
        scheme ? { 'www-authenticate': `${scheme} realm="patchline-webhook"` } : {},
      );
    switch (auth.type) {
      case 'path':
        // A wrong path token looks like an unknown receiver: nothing to learn by guessing.
        if (!pathToken || !safeEqual(pathToken, auth.token())) throw new Refusal(404, 'not found');
        return;
      case 'bearer': {
        const h = headerValue(req, 'authorization') ?? '';
        if (!/^bearer /i.test(h) || !safeEqual(h.slice(7).trim(), auth.token())) throw unauthorized('Bearer');
        return;
      }
      case 'basic': {
        const h = headerValue(req, 'authorization') ?? '';
        const expected = Buffer.from(`${auth.username}:${auth.password()}`).toString('base64');
        if (!/^basic /i.test(h) || !safeEqual(h.slice(6).trim(), expected)) throw unauthorized('Basic');
        return;
      }
      case 'header': {
        const h = headerValue(req, auth.header) ?? '';
        if (!safeEqual(h, auth.value())) throw unauthorized();
        return;
      }
      case 'hmac': {
        const name = auth.header ?? HMAC_HEADERS[receiver.format] ?? 'x-patchline-signature';
        const given = (headerValue(req, name) ?? '').trim();
        const expected = `sha256=${createHmac('sha256', auth.key())
          .update(body ?? Buffer.alloc(0))
          .digest('hex')}`;
        if (!safeEqual(given.toLowerCase(), expected)) throw unauthorized();
        return;
      }
    }
  }
}

interface Answer {
  status: number;
  body: unknown;
}

/** The notices of a body in the receiver's format; a body that is not one is a 400. */
function parseNotification(receiver: Receiver, body: Buffer, githubEvent: string | undefined): ParsedPayload {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Refusal(400, 'the body is not JSON');
  }
  try {
    return parsePayload(receiver.format, json, githubEvent);
  } catch (err) {
    if (err instanceof PayloadError) throw new Refusal(400, `not a ${receiver.format} notification: ${err.message}`);
    throw err;
  }
}

/**
 * The request path's segments, percent-decoded. A path that is not a valid URL or holds a
 * malformed escape (`/hooks/%ZZ`) is the sender's mistake: 400, before anything else is read.
 */
function pathSegments(rawUrl: string | undefined): string[] {
  try {
    const url = new URL(rawUrl ?? '/', 'http://webhook.invalid');
    return url.pathname
      .split('/')
      .filter(Boolean)
      .map((segment) => decodeURIComponent(segment));
  } catch {
    throw new Refusal(400, 'malformed request path');
  }
}
