// A small build service for tests and the demo, speaking the webhook provider's protocol:
// POST /builds (HMAC-signed, idempotent by Idempotency-Key) starts a "build" that, after a
// moment, pushes a new target image to the registry — with the OCI base annotations naming
// the base it was built on — and GET /builds/<id> reports its status, or, in callback mode,
// the build service reports it to the operator (POST /callbacks/builds/<id>). It counts every
// build it really started, which is what the exactly-once tests check.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Annotations } from '../../src/registry/manifest.ts';
import { parseReference, repositoryName } from '../../src/registry/reference.ts';
import { OciPusher } from './oci-push.ts';

export interface BuildRecord {
  id: string;
  baseImage: string;
  baseDigest: string;
  target: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  digest?: string;
  startedAt: number;
  requests: number;
  /** Where the operator asked to be called back, if it did. */
  callbackURL?: string;
}

export interface BuildServiceOptions {
  /** Registry base URL (http://127.0.0.1:port) the targets are pushed to. */
  registryUrl: string;
  hmacKey?: string;
  /** How long a build takes. */
  buildMs?: number;
  /** How long a start request waits before it is answered (the build is already recorded). */
  holdStartMs?: number;
  /** Builds for which this returns true fail instead of pushing. */
  fail?: (record: BuildRecord) => boolean;
  /**
   * Callback mode: the operator's webhook endpoint (http://host:port), used when the start
   * request does not say where to call back (X-Patchline-Callback-URL). A finished build is
   * reported by POST <callbackURL>/callbacks/builds/<id>, signed with hmacKey, tried again
   * (100 ms doubling, 8 times) until the operator answers 2xx.
   */
  callbackURL?: string;
}

export class BuildService {
  readonly builds = new Map<string, BuildRecord>();
  /** Every POST, including repeats of the same build. */
  readonly posts: string[] = [];
  /** Status requests (GET /builds/<id>) answered. */
  statusRequests = 0;
  /** Called on every start request, as it arrives (a test may kill the operator then). */
  onPost: ((id: string) => void) | undefined;
  url = '';
  private server: Server | undefined;
  private options: BuildServiceOptions;
  private readonly pusher: OciPusher;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: BuildServiceOptions) {
    this.options = options;
    this.pusher = new OciPusher(options.registryUrl);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const reply = (status: number, json: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        const url = new URL(req.url ?? '/', 'http://build');
        if (req.method === 'POST' && url.pathname === '/builds') {
          if (this.options.hmacKey) {
            const given = String(req.headers['x-patchline-signature'] ?? '');
            const expected = `sha256=${createHmac('sha256', this.options.hmacKey).update(body).digest('hex')}`;
            if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected)))
              return reply(401, { message: 'bad signature' });
          }
          const id = String(req.headers['idempotency-key'] ?? '');
          if (!id) return reply(400, { message: 'Idempotency-Key is required' });
          this.posts.push(id);
          this.onPost?.(id);
          let parsed: { base?: { image?: string; digest?: string }; target?: { image?: string } };
          try {
            parsed = JSON.parse(body) as typeof parsed;
          } catch {
            return reply(400, { message: 'not JSON' });
          }
          const existing = this.builds.get(id);
          if (existing) {
            existing.requests++;
            return reply(200, { id, status: existing.status, url: `${this.url}/builds/${id}` });
          }
          if (!parsed.base?.image || !parsed.base.digest || !parsed.target?.image)
            return reply(400, { message: 'base and target are required' });
          const record: BuildRecord = {
            id,
            baseImage: parsed.base.image,
            baseDigest: parsed.base.digest,
            target: parsed.target.image,
            status: 'queued',
            startedAt: Date.now(),
            requests: 1,
            ...(req.headers['x-patchline-callback-url']
              ? { callbackURL: String(req.headers['x-patchline-callback-url']) }
              : {}),
          };
          this.builds.set(id, record);
          this.run(record);
          const answer = (): void => reply(202, { id, status: 'queued', url: `${this.url}/builds/${id}` });
          if (!this.options.holdStartMs) return answer();
          const t = setTimeout(() => {
            this.timers.delete(t);
            answer();
          }, this.options.holdStartMs);
          this.timers.add(t);
          return;
        }
        const m = /^\/builds\/([a-z0-9]+)$/.exec(url.pathname);
        if (req.method === 'GET' && m) {
          this.statusRequests++;
          // A broken service: a proxy's HTML page where JSON belongs, or no answer at all.
          if (this.fault === 'garbage') {
            res.writeHead(200, { 'content-type': 'text/html' });
            res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
            return;
          }
          if (this.fault === 'hang') return;
          const record = this.builds.get(m[1]!);
          if (!record) return reply(404, { message: 'unknown build' });
          return reply(200, {
            id: record.id,
            status: record.status,
            ...(record.digest ? { digest: record.digest } : {}),
            url: `${this.url}/builds/${record.id}`,
          });
        }
        reply(404, { message: 'not found' });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  /** How status requests are answered: well, with garbage, or not at all (until stop()). */
  fault: 'garbage' | 'hang' | undefined;

  /** From now on, builds for which this returns true fail instead of pushing. */
  failWhen(predicate: ((record: BuildRecord) => boolean) | undefined): void {
    if (predicate) this.options.fail = predicate;
    else delete this.options.fail;
  }

  /** Builds really started, per base digest. */
  buildsPerBaseDigest(): Map<string, number> {
    const out = new Map<string, number>();
    for (const b of this.builds.values()) out.set(b.baseDigest, (out.get(b.baseDigest) ?? 0) + 1);
    return out;
  }

  private run(record: BuildRecord): void {
    const delay = this.options.buildMs ?? 500;
    const t = setTimeout(() => {
      this.timers.delete(t);
      record.status = 'running';
      void (async () => {
        if (this.options.fail?.(record)) {
          record.status = 'failed';
          return;
        }
        const target = parseReference(record.target);
        const base = parseReference(record.baseImage);
        const pushed = await this.pusher.pushImage(target.repository, target.tag, {
          seed: record.id,
          annotations: {
            [Annotations.baseName]: `${repositoryName(base)}:${base.tag ?? 'latest'}`,
            [Annotations.baseDigest]: record.baseDigest,
          },
        });
        record.digest = pushed.digest;
        record.status = 'succeeded';
      })()
        .catch(() => {
          record.status = 'failed';
        })
        .then(() => this.callBack(record));
    }, delay);
    this.timers.add(t);
  }

  /** Callbacks the operator accepted (2xx), by build id. */
  readonly callbacks: string[] = [];
  private stopped = false;

  private async callBack(record: BuildRecord): Promise<void> {
    const target =
      record.callbackURL ??
      (this.options.callbackURL ? `${this.options.callbackURL}/callbacks/builds/${record.id}` : undefined);
    if (!target) return;
    const body = JSON.stringify({
      status: record.status,
      ...(record.digest ? { digest: record.digest } : {}),
      url: `${this.url}/builds/${record.id}`,
    });
    const signature = `sha256=${createHmac('sha256', this.options.hmacKey ?? '')
      .update(body)
      .digest('hex')}`;
    for (let attempt = 0, wait = 100; attempt < 8 && !this.stopped; attempt++, wait *= 2) {
      try {
        const res = await fetch(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-patchline-signature': signature },
          body,
          signal: AbortSignal.timeout(5000),
        });
        if (res.ok) {
          this.callbacks.push(record.id);
          return;
        }
      } catch {
        // the operator is not there yet, or restarting: tried again below
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
