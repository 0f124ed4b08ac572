// Informers of one resource type over the namespaces an operator watches: one informer per
// watched namespace, or one across all namespaces, read through one interface.
import { Informer } from './informer.ts';
import type { KubeClient } from './kube-client.ts';
import { collectionPath, type KubeObject, type ObjectKey, type ResourceType } from './kube-types.ts';
import type { Logger } from './logger.ts';
import type { Registry } from './metrics.ts';

export interface InformerSet<T extends KubeObject> {
  informers: Informer<T>[];
  get: (key: ObjectKey) => T | undefined;
  list: () => T[];
  /** The cached objects of one namespace. */
  inNamespace: (namespace: string) => T[];
  /** Caches an object read outside list+watch unless it is cached or was just deleted (see Informer.insertIfAbsent). */
  insertIfAbsent: (received: T) => boolean;
  /** Calls `onChange` with every object added or deleted, and every one changed (and its old copy) as `changed` says. */
  onChange: (onChange: (obj: T, old?: T) => void, changed?: (a: T, b: T) => boolean) => void;
}

export interface InformerSetOptions<T> {
  /** Namespaces to watch; empty: all. */
  namespaces: readonly string[];
  client: KubeClient;
  logger: Logger;
  registry: Registry;
  /** Keeps only what is read of each object, or nothing of it (see Informer). */
  transform?: (received: KubeObject) => T | undefined;
  waitBeforeList?: () => Promise<unknown>;
  /** Only objects with these labels (a shard's selector); empty or undefined: all. */
  labelSelector?: string;
  /** A CRD that may not be installed: a 404 is an empty, synced list. */
  optional?: boolean;
}

export function informerSet<T extends KubeObject>(type: ResourceType, options: InformerSetOptions<T>): InformerSet<T> {
  const namespaces = options.namespaces.length > 0 ? options.namespaces : [''];
  const byNamespace = new Map<string, Informer<T>>();
  for (const ns of namespaces) {
    byNamespace.set(
      ns,
      new Informer<T>(options.client, {
        name: type.plural,
        path: collectionPath(type, ns || undefined),
        logger: options.logger,
        registry: options.registry,
        ...(options.transform ? { transform: options.transform } : {}),
        ...(options.optional ? { optional: options.optional } : {}),
        ...(options.waitBeforeList ? { waitBeforeList: options.waitBeforeList } : {}),
        ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
      }),
    );
  }
  const all = byNamespace.get('');
  const informers = [...byNamespace.values()];
  return {
    informers,
    get: (key) => (all ?? byNamespace.get(key.namespace))?.get(`${key.namespace}/${key.name}`),
    list: () => informers.flatMap((i) => i.list()),
    inNamespace: (ns) => (all ?? byNamespace.get(ns))?.listNamespace(ns) ?? [],
    insertIfAbsent: (received) => {
      const ns = received.metadata?.namespace ?? '';
      return (all ?? byNamespace.get(ns))?.insertIfAbsent(received) ?? false;
    },
    onChange: (onChange, changed = () => true) => {
      for (const i of informers)
        i.addHandlers({
          onAdd: (o) => onChange(o),
          onUpdate: (a, b) => {
            if (changed(a, b)) onChange(b, a);
          },
          onDelete: (o) => onChange(o),
        });
    },
  };
}
