// Keeps the admission webhook's TLS material (self-managed mode): the leader reads the Secret,
// issues or rotates what is missing or expiring (certificates.ts), writes the Secret (create,
// or update on the resourceVersion read: two leaders in a hand-over cannot both win), and
// puts the CA bundle into the ValidatingWebhookConfiguration, as cert-manager's cainjector
// would. Every replica serves the webhook, so every replica re-reads the Secret and swaps its
// serving certificate when it changes.
//
// With cert-manager instead (--admission-cert-dir), the certificate comes from mounted files
// and its cainjector fills the caBundle; this class is not used.
import { isAlreadyExists, isConflict, isNotFound, errorMessage, toKubeError } from '../runtime/errors.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import { planRotation, type KeyPairPem, type TlsMaterial } from './certificates.ts';

interface SecretObject {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

interface WebhookConfiguration {
  metadata?: { resourceVersion?: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

export interface AdmissionTlsOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
  hosts: string[];
  log: Logger;
  now?: () => Date;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string | undefined =>
  s ? Buffer.from(s, 'base64').toString('utf8') : undefined;

function materialFromSecret(data: Record<string, string> | undefined): Partial<TlsMaterial> | undefined {
  if (!data) return undefined;
  const pair = (cert: string, key: string): KeyPairPem | undefined => {
    const c = unb64(data[cert]);
    const k = unb64(data[key]);
    return c && k ? { cert: c, key: k } : undefined;
  };
  const ca = pair('ca-current.crt', 'ca.key');
  const serving = pair('tls.crt', 'tls.key');
  const caBundle = unb64(data['ca.crt']);
  return { ...(ca ? { ca } : {}), ...(serving ? { serving } : {}), ...(caBundle ? { caBundle } : {}) };
}

export class AdmissionTls {
  private readonly o: AdmissionTlsOptions;

  constructor(options: AdmissionTlsOptions) {
    this.o = options;
  }

  private get secretPath(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.o.namespace)}/secrets/${encodeURIComponent(this.o.secretName)}`;
  }

  /** What the Secret holds now; undefined when it does not exist yet. */
  async load(signal?: AbortSignal): Promise<TlsMaterial | undefined> {
    try {
      const secret = await this.o.client.requestJson<SecretObject>('GET', this.secretPath, signal ? { signal } : {});
      const m = materialFromSecret(secret.data);
      return m?.ca && m.serving && m.caBundle ? (m as TlsMaterial) : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Leader: issue or rotate what needs it, store it, inject the CA bundle. Returns what is served. */
  async reconcile(signal?: AbortSignal): Promise<TlsMaterial> {
    const now = (this.o.now ?? (() => new Date()))();
    let secret: SecretObject | undefined;
    try {
      secret = await this.o.client.requestJson<SecretObject>('GET', this.secretPath, signal ? { signal } : {});
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const stored = materialFromSecret(secret?.data);
    const plan = planRotation(stored, this.o.hosts, now);
    let material = stored as TlsMaterial;
    if (plan.next) {
      material = plan.next;
      const body = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: this.o.secretName,
          namespace: this.o.namespace,
          labels: { 'app.kubernetes.io/name': 'patchline', 'app.kubernetes.io/component': 'admission-tls' },
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': b64(material.serving.cert),
          'tls.key': b64(material.serving.key),
          'ca.crt': b64(material.caBundle),
          'ca-current.crt': b64(material.ca.cert),
          'ca.key': b64(material.ca.key),
        },
      };
      try {
        if (secret) await this.o.client.requestJson('PUT', this.secretPath, { body, ...(signal ? { signal } : {}) });
        else
          await this.o.client.requestJson(
            'POST',
            `/api/v1/namespaces/${encodeURIComponent(this.o.namespace)}/secrets`,
            { body, ...(signal ? { signal } : {}) },
          );
      } catch (err) {
        // Another replica wrote it first (a hand-over): serve what it wrote.
        if (!isConflict(err) && !isAlreadyExists(err)) throw err;
        const theirs = await this.load(signal);
        if (!theirs) throw err;
        material = theirs;
      }
      this.o.log.info('admission certificates issued', { reasons: plan.reasons, secret: this.o.secretName });
    }
    await this.inject(material.caBundle, signal);
    return material;
  }

  /** Puts the CA bundle into every webhook of the configuration that lacks it. */
  private async inject(caBundle: string, signal?: AbortSignal): Promise<void> {
    const path = `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${encodeURIComponent(this.o.webhookConfigurationName)}`;
    let config: WebhookConfiguration;
    try {
      config = await this.o.client.requestJson<WebhookConfiguration>('GET', path, signal ? { signal } : {});
    } catch (err) {
      if (isNotFound(err)) {
        this.o.log.warn('the admission webhook configuration does not exist; nothing to inject the CA into', {
          name: this.o.webhookConfigurationName,
        });
        return;
      }
      throw new Error(`cannot read the admission webhook configuration: ${errorMessage(toKubeError(err))}`, {
        cause: err,
      });
    }
    const want = b64(caBundle);
    const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: config.metadata?.resourceVersion }];
    (config.webhooks ?? []).forEach((w, i) => {
      if (w.clientConfig?.caBundle !== want)
        ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
    });
    if (ops.length === 1) return;
    await this.o.client.requestJson('PATCH', path, {
      body: ops,
      contentType: 'application/json-patch+json',
      ...(signal ? { signal } : {}),
    });
    this.o.log.info('admission CA bundle injected', {
      name: this.o.webhookConfigurationName,
      webhooks: ops.length - 1,
    });
  }
}
