// A tiny in-process HTTP server whose answers a test scripts, for behaviour a real registry
// cannot be made to show on demand (429, 5xx, timeouts, oversized or malformed bodies,
// pagination the Debian registry does not do).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export class FakeHttp {
  readonly seen: Seen[] = [];
  private readonly routes: { method: string; path: RegExp; handler: Handler }[] = [];
  private server: Server | undefined;
  host = '';

  on(method: string, path: RegExp | string, handler: Handler): this {
    this.routes.unshift({
      method,
      path: typeof path === 'string' ? new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : path,
      handler,
    });
    return this;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
        const path = (req.url ?? '').split('?')[0] ?? '';
        const route = this.routes.find((r) => r.method === req.method && r.path.test(path));
        if (!route) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no route' }] }));
          return;
        }
        route.handler(req, res, Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}
