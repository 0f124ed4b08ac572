// The operator's own HTTP endpoints on one port: /healthz (liveness), /readyz
// (readiness) and /metrics (Prometheus). Checks are named functions; a failing check's
// name and error are in the response body, as controller-runtime's healthz does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from './metrics.ts';
import type { Logger } from './logger.ts';
import { close, listen } from './listen.ts';

export type Check = () => void | Promise<void>;

export interface ProbeServerOptions {
  host: string;
  port: number;
  registry: Registry;
  logger: Logger;
}

export class ProbeServer {
  private readonly options: ProbeServerOptions;
  private readonly health = new Map<string, Check>();
  private readonly ready = new Map<string, Check>();
  private server: Server | undefined;

  constructor(options: ProbeServerOptions) {
    this.options = options;
  }

  addHealthCheck(name: string, check: Check): void {
    this.health.set(name, check);
  }

  addReadyCheck(name: string, check: Check): void {
    this.ready.set(name, check);
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.options.logger.error('probe server request failed', { error: String(err) });
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.server = server;
    return listen(server, this.options.host, this.options.port);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await close(server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz':
      case '/livez':
        return this.respondChecks(res, this.health);
      case '/readyz':
        return this.respondChecks(res, this.ready);
      case '/metrics': {
        const body = await this.options.registry.metrics();
        res.writeHead(200, { 'content-type': this.options.registry.contentType }).end(body);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  private async respondChecks(res: ServerResponse, checks: Map<string, Check>): Promise<void> {
    const failures: string[] = [];
    for (const [name, check] of checks) {
      try {
        await check();
      } catch (err) {
        failures.push(`[-]${name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (failures.length === 0) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(failures.join('\n') + '\n');
    }
  }
}
