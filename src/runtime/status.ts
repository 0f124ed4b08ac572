// Writing a resource's status: only when it changed, and never over a newer version.
//
// The status is replaced (PUT on the status subresource) with the resourceVersion the
// reconciler read, so a write based on a stale read fails with 409 Conflict instead of
// overwriting what another writer (a previous leader, say) recorded. State that must
// survive restarts lives in status; losing an update silently is not acceptable.
import { isDeepStrictEqual } from 'node:util';
import type { KubeClient } from './kube-client.ts';
import { objectPath, type KubeObject, type ObjectKey, type ResourceType } from './kube-types.ts';
import { isConflict, isNotFound } from './errors.ts';
import { counter, type Registry } from './metrics.ts';

/** Drops undefined fields so that `{a: undefined}` and `{}` compare equal. */
function normalize<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

export function statusEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalize(a), normalize(b));
}

export interface StatusWriter {
  /** Writes `status` unless it equals the object's current status; returns whether it wrote. */
  write<T extends KubeObject & { status?: S }, S>(type: ResourceType, obj: T, status: S): Promise<boolean>;
  /**
   * Reads the object afresh, lets `mutate` compute the new status from it (undefined: leave
   * it alone), and writes it; on a conflict, reads and tries again. For outcomes that must
   * not be lost, such as the id of a build just started. Returns the status written (or
   * found unchanged), or undefined when mutate declined or the object is gone.
   */
  commit<T extends KubeObject & { status?: S }, S>(
    type: ResourceType,
    key: ObjectKey,
    mutate: (current: T) => S | undefined,
  ): Promise<S | undefined>;
}

export class KubeStatusWriter implements StatusWriter {
  private readonly client: KubeClient;
  private readonly writes;

  constructor(client: KubeClient, registry?: Registry) {
    this.client = client;
    this.writes = registry
      ? counter(registry, {
          name: 'patchline_status_writes_total',
          help: 'Status writes, by kind and result (written, unchanged, conflict).',
          labelNames: ['kind', 'result'] as const,
        })
      : undefined;
  }

  async write<T extends KubeObject & { status?: S }, S>(type: ResourceType, obj: T, status: S): Promise<boolean> {
    if (statusEqual(obj.status, status)) {
      this.writes?.inc({ kind: type.kind, result: 'unchanged' });
      return false;
    }
    const meta = obj.metadata ?? {};
    const body = {
      apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
      kind: type.kind,
      metadata: { name: meta.name, namespace: meta.namespace, resourceVersion: meta.resourceVersion },
      status: normalize(status),
    };
    const path = `${objectPath(type, { namespace: meta.namespace ?? '', name: meta.name ?? '' })}/status`;
    try {
      await this.client.requestJson('PUT', path, { body });
    } catch (err) {
      if (isConflict(err)) this.writes?.inc({ kind: type.kind, result: 'conflict' });
      throw err;
    }
    this.writes?.inc({ kind: type.kind, result: 'written' });
    return true;
  }

  async commit<T extends KubeObject & { status?: S }, S>(
    type: ResourceType,
    key: ObjectKey,
    mutate: (current: T) => S | undefined,
  ): Promise<S | undefined> {
    for (let attempt = 0; ; attempt++) {
      let current: T;
      try {
        current = await this.client.requestJson<T>('GET', objectPath(type, key));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      const next = mutate(current);
      if (next === undefined) return undefined;
      try {
        await this.write<T, S>(type, current, next);
        return next;
      } catch (err) {
        if (!isConflict(err) || attempt >= 4) throw err;
      }
    }
  }
}
