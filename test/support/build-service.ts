// A small build service for tests and the demo, speaking the webhook provider's protocol:
// POST /builds (HMAC-signed, idempotent by Idempotency-Key) starts a "build" that, after a
// moment, pushes a new target image to the registry — with the OCI base annotations naming
// the base it was built on — and GET /builds/<id> reports its status. It counts every build
// it really started, which is what the exactly-once tests check.
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
}

export class BuildService {
  readonly builds = new Map<string, BuildRecord>();
  /** Every POST, including repeats of the same build. */
  readonly posts: string[] = [];
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
    for (const t of this.timers) clearTimeout(t);
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

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
      })().catch(() => {
        record.status = 'failed';
      });
    }, delay);
    this.timers.add(t);
  }
}
