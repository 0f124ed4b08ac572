// A GitWriteBack reconciler with its Kubernetes side in memory (the resource, its policies,
// Secrets, status writes, Events), against a real git server and forge: for tests of what one
// run does to git and to the forge, run after run, including a run that dies half-way.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GitWriteBack, ImagePolicy, RebuildTrigger } from '../../src/api/v1alpha1/index.ts';
import { GitWriteBackReconciler } from '../../src/controllers/gitwriteback/reconciler.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { createRegistry } from '../../src/runtime/metrics.ts';
import type { ReconcileResult } from '../../src/runtime/reconciler.ts';
import type { StatusWriter } from '../../src/runtime/status.ts';

export interface RecordedEvent {
  type: string;
  reason: string;
  note: string;
}

export class WriteBackHarness {
  wb: GitWriteBack;
  policies: ImagePolicy[] = [];
  triggers: RebuildTrigger[] = [];
  readonly secrets = new Map<string, Record<string, string>>();
  readonly events: RecordedEvent[] = [];
  readonly registry = createRegistry(false);
  /** Status commits of the current run; a test may make the nth one fail (a crash). */
  private commits = 0;
  private crashAt: number | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'patchline-wb-harness-'));
  private readonly reconciler: GitWriteBackReconciler;

  constructor(wb: GitWriteBack) {
    this.wb = wb;
    const status = {
      write: <T, S>(_type: unknown, _obj: T, s: S) => {
        this.wb = { ...this.wb, status: s as GitWriteBack['status'] };
        return Promise.resolve(true);
      },
      commit: <T, S>(_type: unknown, _key: unknown, mutate: (current: T) => S | undefined) => {
        this.commits++;
        if (this.crashAt !== undefined && this.commits >= this.crashAt)
          return Promise.reject(new Error('killed: the status write never happened'));
        const next = mutate(this.wb as T);
        if (next !== undefined) this.wb = { ...this.wb, status: next as GitWriteBack['status'] };
        return Promise.resolve(next);
      },
    } as StatusWriter;
    this.reconciler = new GitWriteBackReconciler({
      get: () => this.wb,
      policies: () => this.policies,
      triggers: () => this.triggers,
      status,
      events: {
        record: (_regarding, type, reason, _action, note) => this.events.push({ type, reason, note }),
      },
      credentials: {
        secretData: (_ns: string, name: string) => {
          const data = this.secrets.get(name);
          return data ? Promise.resolve(data) : Promise.reject(new Error(`Secret ${name} not found`));
        },
      },
      workDir: this.dir,
      registry: this.registry,
    });
  }

  /** One reconcile; with `crashAtCommit`, the nth status commit of the run fails as if the process died there. */
  async run(options: { crashAtCommit?: number } = {}): Promise<ReconcileResult | 'crashed'> {
    this.commits = 0;
    this.crashAt = options.crashAtCommit;
    const key = { namespace: this.wb.metadata?.namespace ?? '', name: this.wb.metadata?.name ?? '' };
    const log = createLogger({ level: 'error', format: 'json' });
    try {
      return await this.reconciler.reconcile(key, { log, reconcileId: 'test', signal: new AbortController().signal });
    } catch (err) {
      if (options.crashAtCommit !== undefined && String(err).includes('killed')) return 'crashed';
      throw err;
    } finally {
      this.crashAt = undefined;
    }
  }

  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
