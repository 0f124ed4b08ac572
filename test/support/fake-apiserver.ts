// An in-process API server that speaks just enough list+watch over HTTP to test the
// informer: paginated lists, watches that replay history from a resourceVersion, bookmarks,
// 410 Gone for compacted history, server-side watch ends, and injected failures. (nock
// streams watches badly; a real HTTP server shows what the client really does.)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterConnection } from '../../src/runtime/kubeconfig.ts';

export interface FakeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; uid?: string };
  spec?: unknown;
  status?: unknown;
}

interface Event {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: FakeObject;
  rv: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
}

interface Failure {
  kind: 'list' | 'watch';
  status: number;
  reason: string;
}

export class FakeApiServer {
  readonly path: string;
  readonly requests: RequestRecord[] = [];
  private server: Server | undefined;
  private rv = 100;
  private compactedBelow = 0;
  private readonly objects = new Map<string, FakeObject>();
  private readonly history: Event[] = [];
  private readonly watches = new Set<ServerResponse>();
  private readonly failures: Failure[] = [];
  port = 0;

  constructor(path = '/apis/example.com/v1/widgets') {
    this.path = path;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const w of this.watches) w.destroy();
    this.watches.clear();
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  kubeConfig(): ClusterConnection {
    return {
      server: `http://127.0.0.1:${this.port}`,
      tls: { rejectUnauthorized: false },
      credentials: { type: 'token', token: 'test-token' },
      origin: 'fake API server',
    };
  }

  get resourceVersion(): number {
    return this.rv;
  }

  openWatches(): number {
    return this.watches.size;
  }

  /** Creates or updates an object and tells open watches. */
  upsert(name: string, spec: unknown = {}, namespace = 'default'): FakeObject {
    const key = `${namespace}/${name}`;
    const existing = this.objects.get(key);
    this.rv++;
    const obj: FakeObject = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: {
        name,
        namespace,
        uid: existing?.metadata.uid ?? `uid-${name}`,
        resourceVersion: String(this.rv),
        generation: (existing?.metadata.generation ?? 0) + 1,
      },
      spec,
    };
    this.objects.set(key, obj);
    this.record({ type: existing ? 'MODIFIED' : 'ADDED', object: obj, rv: this.rv });
    return obj;
  }

  remove(name: string, namespace = 'default'): void {
    const key = `${namespace}/${name}`;
    const existing = this.objects.get(key);
    if (!existing) return;
    this.objects.delete(key);
    this.rv++;
    this.record({
      type: 'DELETED',
      object: { ...existing, metadata: { ...existing.metadata, resourceVersion: String(this.rv) } },
      rv: this.rv,
    });
  }

  /** Changes objects without telling watches, as if the events were lost. */
  silentlyRemove(name: string, namespace = 'default'): void {
    this.objects.delete(`${namespace}/${name}`);
    this.rv++;
  }

  /** Forgets history up to now: watches from an older resourceVersion get 410. */
  compact(): void {
    this.compactedBelow = this.rv;
    this.history.length = 0;
  }

  bookmark(): void {
    for (const w of this.watches)
      this.send(w, { type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv) } } });
  }

  /** Sends a 410 ERROR event to every open watch and ends it. */
  expireWatches(): void {
    for (const w of this.watches) {
      this.send(w, {
        type: 'ERROR',
        object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' },
      });
      w.end();
    }
    this.watches.clear();
  }

  /** Ends every open watch normally, as the server's watch timeout does. */
  endWatches(): void {
    for (const w of this.watches) w.end();
    this.watches.clear();
  }

  /** Makes the next list or watch request fail with this status. */
  failNext(kind: 'list' | 'watch', status: number, reason = 'InternalError'): void {
    this.failures.push({ kind, status, reason });
  }

  lists(): RequestRecord[] {
    return this.requests.filter((r) => r.query.watch === undefined);
  }

  watchRequests(): RequestRecord[] {
    return this.requests.filter((r) => r.query.watch !== undefined);
  }

  private record(event: Event): void {
    this.history.push(event);
    for (const w of this.watches) this.send(w, { type: event.type, object: event.object });
  }

  private send(res: ServerResponse, event: unknown): void {
    res.write(JSON.stringify(event) + '\n');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query });
    if (req.headers.authorization !== 'Bearer test-token') {
      return this.status(res, 401, 'Unauthorized');
    }
    if (url.pathname !== this.path || req.method !== 'GET') return this.status(res, 404, 'NotFound');
    const isWatch = query.watch !== undefined;
    const failureIndex = this.failures.findIndex((f) => f.kind === (isWatch ? 'watch' : 'list'));
    if (failureIndex >= 0) {
      const [failure] = this.failures.splice(failureIndex, 1);
      return this.status(res, failure!.status, failure!.reason);
    }
    if (isWatch) this.watch(res, query);
    else this.list(res, query);
  }

  private list(res: ServerResponse, query: Record<string, string>): void {
    const all = [...this.objects.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const limit = Number(query.limit ?? 0) || all.length;
    const start = Number(query.continue ?? 0);
    const items = all.slice(start, start + limit);
    const next = start + limit < all.length ? String(start + limit) : undefined;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'WidgetList',
        apiVersion: 'example.com/v1',
        metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) },
        items,
      }),
    );
  }

  private watch(res: ServerResponse, query: Record<string, string>): void {
    const from = Number(query.resourceVersion ?? 0);
    if (from && from < this.compactedBelow) return this.status(res, 410, 'Expired');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    for (const e of this.history) if (e.rv > from) this.send(res, { type: e.type, object: e.object });
    this.watches.add(res);
    res.on('close', () => this.watches.delete(res));
  }

  private status(res: ServerResponse, code: number, reason: string): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code, message: `fake ${reason}` }),
    );
  }
}
