// Runs the admission webhook in the operator: where its certificate comes from (the
// self-managed Secret, kept by the leader; or cert-manager's mounted files), when the server
// starts (once the policy cache is synced and a certificate exists: answering from an empty
// cache would admit everything), and how a rotated certificate is picked up (every replica
// looks every 30 s).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../runtime/logger.ts';
import type { AdmissionTls } from './tls.ts';
import { AdmissionServer, type AdmissionReviewer } from './server.ts';

export interface AdmissionRuntimeOptions {
  host: string;
  port: number;
  reviewer: AdmissionReviewer;
  /** Self-managed certificates, or files from cert-manager. */
  certificates: { kind: 'managed'; tls: AdmissionTls } | { kind: 'files'; dir: string };
  /** CA (PEM) of the API server's client certificate; absent: no client certificate asked for. */
  clientCA?: string;
  /** True once the caches the reviews read are synced. */
  ready: () => boolean;
  log: Logger;
  refreshMs?: number;
}

const ROTATE_CHECK_MS = 60 * 60_000;

export class AdmissionRuntime {
  private readonly o: AdmissionRuntimeOptions;
  private server: AdmissionServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;

  constructor(options: AdmissionRuntimeOptions) {
    this.o = options;
  }

  private fromFiles(dir: string): { cert: string; key: string; version: string } {
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    return {
      cert: readFileSync(cert, 'utf8'),
      key: readFileSync(key, 'utf8'),
      version: `${statSync(cert).mtimeMs}|${statSync(key).mtimeMs}`,
    };
  }

  /** Serves `tls`: starts the server the first time, swaps the certificate after. */
  private async serve(tls: { cert: string; key: string }): Promise<void> {
    if (this.server) {
      this.server.useCertificate(tls);
      return;
    }
    if (!this.o.ready()) return;
    const server = new AdmissionServer({
      host: this.o.host,
      port: this.o.port,
      tls,
      reviewer: this.o.reviewer,
      log: this.o.log,
      ...(this.o.clientCA ? { clientCA: this.o.clientCA } : {}),
    });
    const at = await server.start();
    this.server = server;
    this.o.log.info('serving admission reviews', {
      address: `${at.address}:${at.port}`,
      clientCertificates: Boolean(this.o.clientCA),
    });
  }

  /** Looks for the current certificate and serves it. */
  async refresh(signal?: AbortSignal): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = (async () => {
      try {
        const c = this.o.certificates;
        if (c.kind === 'files') await this.serve(this.fromFiles(c.dir));
        else {
          const material = await c.tls.load(signal);
          if (material) await this.serve(material.serving);
        }
      } catch (err) {
        this.o.log.warn('admission certificate not available yet', {
          error: err instanceof Error ? err.message : String(err),
        });
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  /** Every replica: look now and every refreshMs. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.o.refreshMs ?? 30_000);
    this.timer.unref();
  }

  /** Leader: issue or rotate the self-managed certificate now and every hour, then serve it. */
  async lead(signal: AbortSignal): Promise<void> {
    const c = this.o.certificates;
    if (c.kind !== 'managed') return;
    while (!signal.aborted) {
      try {
        const material = await c.tls.reconcile(signal);
        await this.serve(material.serving);
      } catch (err) {
        if (signal.aborted) break;
        this.o.log.error('cannot keep the admission certificates', {
          error: err instanceof Error ? err.message : String(err),
        });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.server ? ROTATE_CHECK_MS : 10_000);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.server?.stop();
  }
}
