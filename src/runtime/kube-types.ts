// Shapes of Kubernetes objects as they arrive over the wire: plain JSON, with timestamps as
// RFC 3339 strings. client-node's model classes type timestamps as Date because its
// deserialiser converts them, but objects read through our informers and custom-object
// calls are raw JSON; these types say what is really there.
import { intern, internDeep } from './intern.ts';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: unknown;
  subresource?: string;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: ListMeta;
  items: T[];
}

/** The API server's error body (kind: Status). */
export interface StatusBody {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
}

/** A namespaced object's identity, the key of the work queue. */
export interface ObjectKey {
  namespace: string;
  name: string;
}

export function keyOf(obj: KubeObject): string {
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Group, version and plural of a resource: enough to build its REST path. */
export interface ResourceType {
  group: string; // '' for the core group
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** REST path of a resource collection, in one namespace or across all. */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const prefix = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  if (type.namespaced && namespace) return `${prefix}/namespaces/${encodeURIComponent(namespace)}/${type.plural}`;
  return `${prefix}/${type.plural}`;
}

export function objectPath(type: ResourceType, key: ObjectKey): string {
  return `${collectionPath(type, key.namespace)}/${encodeURIComponent(key.name)}`;
}

/** MicroTime as the API server parses it: microseconds and a Z, e.g. 2026-11-22T09:15:03.365000Z. */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * A resource as the operator's cache keeps it: without managedFields and kubectl's
 * last-applied copy of the spec, which nothing reads and which are often most of the bytes;
 * its spec and status strings shared with the other objects that say the same (intern.ts).
 */
export function withoutBookkeeping<T extends KubeObject>(received: KubeObject): T {
  const r = received as KubeObject & { spec?: unknown; status?: unknown };
  internDeep(r.spec);
  internDeep(r.status);
  if (r.apiVersion !== undefined) r.apiVersion = intern(r.apiVersion);
  if (r.kind !== undefined) r.kind = intern(r.kind);
  const metadata = received.metadata;
  if (metadata?.namespace !== undefined) metadata.namespace = intern(metadata.namespace);
  if (!metadata || (metadata.managedFields === undefined && metadata.annotations?.[LAST_APPLIED] === undefined))
    return received as T;
  const { managedFields: _managedFields, ...kept } = metadata;
  if (kept.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _lastApplied, ...annotations } = kept.annotations;
    kept.annotations = annotations;
  }
  return { ...received, metadata: kept } as T;
}

const OBJECT_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Whether a name can be an object's name (a DNS subdomain, as Secrets and ServiceAccounts
 * need): checked before a name from a spec goes into a request path, so that nothing ("..",
 * a slash) reaches past the object of the namespace it was meant for.
 */
export function isObjectName(name: string): boolean {
  return OBJECT_NAME.test(name);
}
