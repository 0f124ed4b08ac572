// Credentials from Kubernetes: a kubernetes.io/dockerconfigjson (or legacy dockercfg)
// Secret named by a resource, and the imagePullSecrets of a ServiceAccount. The operator
// reads only the Secrets and ServiceAccounts it is pointed to, by name (RBAC: get, no list).
// Reads are cached briefly, so that many checks cost one read.
import type { KubeClient } from '../../runtime/kube-client.ts';
import { isNotFound, errorMessage, toKubeError } from '../../runtime/errors.ts';
import { isObjectName } from '../../runtime/kube-types.ts';
import {
  ANONYMOUS,
  CredentialError,
  lookupCredential,
  parseDockerConfig,
  type CredentialSource,
  type RegistryCredential,
} from './credentials.ts';

interface SecretObject {
  type?: string;
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

interface ServiceAccountObject {
  imagePullSecrets?: { name?: string }[];
}

export interface KubeCredentialOptions {
  namespace: string;
  secretName?: string;
  serviceAccountName?: string;
  /** How long a read Secret is reused; default 60 s. */
  cacheMs?: number;
  now?: () => number;
}

export class KubeCredentials implements CredentialSource {
  readonly id: string;
  private readonly client: KubeClient;
  private readonly options: KubeCredentialOptions;
  private cached: { at: number; entries: Map<string, RegistryCredential>[] } | undefined;

  constructor(client: KubeClient, options: KubeCredentialOptions) {
    this.client = client;
    this.options = options;
    const parts = [
      options.secretName ? `secret:${options.namespace}/${options.secretName}` : '',
      options.serviceAccountName ? `serviceaccount:${options.namespace}/${options.serviceAccountName}` : '',
    ].filter(Boolean);
    this.id = parts.join('+') || 'anonymous';
  }

  async credentialFor(registry: string, signal?: AbortSignal): Promise<RegistryCredential> {
    const entries = await this.load(signal);
    for (const e of entries) {
      const c = lookupCredential(e, registry);
      if (c) return c;
    }
    return ANONYMOUS;
  }

  private async load(signal?: AbortSignal): Promise<Map<string, RegistryCredential>[]> {
    const now = (this.options.now ?? Date.now)();
    if (this.cached && now - this.cached.at < (this.options.cacheMs ?? 60_000)) return this.cached.entries;
    const names: string[] = [];
    if (this.options.secretName) names.push(this.options.secretName);
    if (this.options.serviceAccountName) {
      const sa = await this.get<ServiceAccountObject>(
        `/api/v1/namespaces/${encodeURIComponent(this.options.namespace)}/serviceaccounts/${encodeURIComponent(this.options.serviceAccountName)}`,
        `ServiceAccount ${this.options.namespace}/${this.options.serviceAccountName}`,
        signal,
      );
      for (const ref of sa.imagePullSecrets ?? []) if (ref.name) names.push(ref.name);
    }
    const entries: Map<string, RegistryCredential>[] = [];
    for (const name of names) entries.push(await this.readSecret(name, signal));
    this.cached = { at: now, entries };
    return entries;
  }

  private async readSecret(name: string, signal?: AbortSignal): Promise<Map<string, RegistryCredential>> {
    const what = `Secret ${this.options.namespace}/${name}`;
    const secret = await this.get<SecretObject>(
      `/api/v1/namespaces/${encodeURIComponent(this.options.namespace)}/secrets/${encodeURIComponent(name)}`,
      what,
      signal,
    );
    const key =
      secret.type === 'kubernetes.io/dockerconfigjson'
        ? '.dockerconfigjson'
        : secret.type === 'kubernetes.io/dockercfg'
          ? '.dockercfg'
          : undefined;
    if (!key) {
      throw new CredentialError(
        `${what} has type ${secret.type ?? '(none)'}; registry credentials need kubernetes.io/dockerconfigjson`,
      );
    }
    const data = secret.data?.[key];
    if (!data) throw new CredentialError(`${what} has no ${key} key`);
    try {
      return parseDockerConfig(Buffer.from(data, 'base64').toString('utf8'));
    } catch (err) {
      throw new CredentialError(`${what}: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async get<T>(path: string, what: string, signal?: AbortSignal): Promise<T> {
    // The last segment is a name from a spec: a name in this namespace, nothing that reaches past it.
    const name = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
    if (!isObjectName(name)) throw new CredentialError(`${what}: "${name}" is not a valid name`);
    try {
      return await this.client.requestJson<T>('GET', path, signal ? { signal } : {});
    } catch (err) {
      if (isNotFound(err)) throw new CredentialError(`${what} does not exist`);
      throw new CredentialError(`cannot read ${what}: ${errorMessage(toKubeError(err))}`, { cause: err });
    }
  }
}
