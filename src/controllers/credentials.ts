// Turns a resource's references to credentials into credential sources: spec.registryAuth
// for registries, spec.build.credentialsRef for build services. One source per distinct
// Secret/ServiceAccount/cloud identity, shared by every resource that names it, so that
// tokens and digest checks are shared too. Secrets are read only when named, by name.
import type { KubeClient } from '../runtime/kube-client.ts';
import { isNotFound, errorMessage, toKubeError } from '../runtime/errors.ts';
import { isObjectName } from '../runtime/kube-types.ts';
import { AzureRegistryCredentials, EcrCredentials, GoogleCredentials } from '../registry/auth/cloud.ts';
import {
  ChainedCredentials,
  CredentialError,
  anonymousSource,
  type CredentialSource,
} from '../registry/auth/credentials.ts';
import { KubeCredentials } from '../registry/auth/kube-credentials.ts';
import type { ProviderCredentials } from '../builders/types.ts';

export interface RegistryAuthSpec {
  secretRef?: { name: string };
  serviceAccountName?: string;
  provider?: 'generic' | 'azure' | 'aws' | 'gcp';
}

interface DataObject {
  data?: Record<string, string>;
}

export class CredentialResolver {
  private readonly client: KubeClient;
  private readonly sources = new Map<string, CredentialSource>();
  private readonly cloud = new Map<string, CredentialSource>();
  private readonly secrets = new Map<string, { at: number; data: Record<string, string> }>();
  private readonly now: () => number;

  constructor(client: KubeClient, now: () => number = Date.now) {
    this.client = client;
    this.now = now;
  }

  private cloudSource(provider: 'azure' | 'aws' | 'gcp'): CredentialSource {
    let s = this.cloud.get(provider);
    if (!s) {
      s =
        provider === 'azure'
          ? new AzureRegistryCredentials()
          : provider === 'aws'
            ? new EcrCredentials()
            : new GoogleCredentials();
      this.cloud.set(provider, s);
    }
    return s;
  }

  registrySource(namespace: string, auth: RegistryAuthSpec | undefined): CredentialSource {
    const secret = auth?.secretRef?.name;
    const sa = auth?.serviceAccountName;
    const provider = auth?.provider && auth.provider !== 'generic' ? auth.provider : undefined;
    if (!secret && !sa && !provider) return anonymousSource;
    const key = `${namespace}|${secret ?? ''}|${sa ?? ''}|${provider ?? ''}`;
    let source = this.sources.get(key);
    if (!source) {
      const parts: CredentialSource[] = [];
      if (secret || sa) {
        parts.push(
          new KubeCredentials(this.client, {
            namespace,
            ...(secret ? { secretName: secret } : {}),
            ...(sa ? { serviceAccountName: sa } : {}),
          }),
        );
      }
      if (provider) parts.push(this.cloudSource(provider));
      source = parts.length === 1 ? parts[0]! : new ChainedCredentials(parts);
      this.sources.set(key, source);
    }
    return source;
  }

  /** The decoded data of a build credentials Secret; undefined when none is named (workload identity). */
  async buildCredentials(
    namespace: string,
    ref: { name: string } | undefined,
    signal?: AbortSignal,
  ): Promise<ProviderCredentials> {
    if (!ref) return undefined;
    return this.secretData(namespace, ref.name, 'build credentials', signal);
  }

  /**
   * The decoded data of a Secret, read by name and cached for a minute (a rotated Secret
   * takes effect within that minute). `purpose` names it in errors.
   */
  secretData(namespace: string, name: string, purpose: string, signal?: AbortSignal): Promise<Record<string, string>> {
    return this.objectData('Secret', namespace, name, purpose, signal);
  }

  /** The data of a ConfigMap (trust stores: public certificates), read and cached as Secrets are. */
  configMapData(
    namespace: string,
    name: string,
    purpose: string,
    signal?: AbortSignal,
  ): Promise<Record<string, string>> {
    return this.objectData('ConfigMap', namespace, name, purpose, signal);
  }

  private async objectData(
    kind: 'Secret' | 'ConfigMap',
    namespace: string,
    name: string,
    purpose: string,
    signal?: AbortSignal,
  ): Promise<Record<string, string>> {
    const key = `${kind}/${namespace}/${name}`;
    const shown = `${namespace}/${name}`;
    // A name is a name in this namespace: nothing that could reach another path ("../x").
    if (!isObjectName(name)) throw new CredentialError(`the ${purpose} ${kind} name "${name}" is not a valid name`);
    const cached = this.secrets.get(key);
    if (cached && this.now() - cached.at < 60_000) return cached.data;
    const resource = kind === 'Secret' ? 'secrets' : 'configmaps';
    let object: DataObject;
    try {
      object = await this.client.requestJson<DataObject>(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}/${encodeURIComponent(name)}`,
        signal ? { signal } : {},
      );
    } catch (err) {
      if (isNotFound(err)) throw new CredentialError(`the ${purpose} ${kind} ${shown} does not exist`);
      throw new CredentialError(`cannot read the ${purpose} ${kind} ${shown}: ${errorMessage(toKubeError(err))}`, {
        cause: err,
      });
    }
    // Secrets carry base64 in data; ConfigMaps carry text in data (binaryData is not read).
    const data = Object.fromEntries(
      Object.entries(object.data ?? {}).map(([k, v]) => [
        k,
        kind === 'Secret' ? Buffer.from(v, 'base64').toString('utf8') : v,
      ]),
    );
    this.secrets.set(key, { at: this.now(), data });
    return data;
  }
}
