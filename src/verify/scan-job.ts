// The on-demand scan Job (verify.vulnerabilities.onDemandScan), as pure functions: the Job a
// candidate gets (by default Trivy writes a cosign-vuln predicate of the digest into a shared
// volume, then cosign attests it with the key mounted from a Secret, without a transparency-log
// upload), and what a Job's status says. The operator creates, follows and deletes it
// (controllers/scan-jobs.ts); the attestation it leaves is read like any other.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import { substituteJson } from '../builders/request.ts';
import { parseDuration } from '../runtime/duration.ts';

export type OnDemandScanSpec = NonNullable<
  NonNullable<NonNullable<ImagePolicy['spec']['verify']>['vulnerabilities']>['onDemandScan']
>;

const SCAN_JOB_LABEL = 'patchline.dev/scan-of';

/** `scan-<policy>-<12 hex of the digest>`, at most 63 characters: one Job per policy and digest. */
export function scanJobName(policy: string, digest: string): string {
  const hex = digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
  return `scan-${policy.replace(/\./g, '-').slice(0, 63 - 6 - 13)}-${hex}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function defaultPodSpec(spec: OnDemandScanSpec, image: string): Record<string, unknown> {
  const docker = spec.registryAuthSecretName;
  const dockerMount = docker ? [{ name: 'docker', mountPath: '/docker', readOnly: true }] : [];
  const dockerEnv = docker ? [{ name: 'DOCKER_CONFIG', value: '/docker' }] : [];
  const restricted = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
  return {
    restartPolicy: 'Never',
    // The scan needs no Kubernetes API: no token in its pods.
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    volumes: [
      { name: 'scan', emptyDir: {} },
      { name: 'key', secret: { secretName: spec.signingKeySecretName } },
      ...(docker
        ? [
            {
              name: 'docker',
              secret: { secretName: docker, items: [{ key: '.dockerconfigjson', path: 'config.json' }] },
            },
          ]
        : []),
    ],
    initContainers: [
      {
        name: 'trivy',
        image: spec.trivyImage ?? 'mirror.gcr.io/aquasec/trivy:0.58.1',
        args: ['image', '--quiet', '--format', 'cosign-vuln', '--output', '/scan/vuln.json', image],
        env: [{ name: 'TRIVY_CACHE_DIR', value: '/scan/cache' }, ...dockerEnv],
        volumeMounts: [{ name: 'scan', mountPath: '/scan' }, ...dockerMount],
        securityContext: restricted,
      },
    ],
    containers: [
      {
        name: 'attest',
        image: spec.cosignImage ?? 'ghcr.io/sigstore/cosign/cosign:v2.4.1',
        args: [
          'attest',
          '--yes',
          '--tlog-upload=false',
          '--key',
          '/key/cosign.key',
          '--type',
          'vuln',
          '--predicate',
          '/scan/vuln.json',
          image,
        ],
        env: [
          {
            name: 'COSIGN_PASSWORD',
            valueFrom: { secretKeyRef: { name: spec.signingKeySecretName, key: 'cosign.password', optional: true } },
          },
          ...dockerEnv,
        ],
        volumeMounts: [
          { name: 'scan', mountPath: '/scan', readOnly: true },
          { name: 'key', mountPath: '/key', readOnly: true },
          ...dockerMount,
        ],
        securityContext: restricted,
      },
    ],
  };
}

/** The Job that scans `repository@digest` for a policy, owned by it. */
export function scanJob(
  policy: ImagePolicy,
  spec: OnDemandScanSpec,
  repository: string,
  digest: string,
): Record<string, unknown> {
  const name = policy.metadata?.name ?? '';
  const image = `${repository}@${digest}`;
  const custom = isObject(spec.template)
    ? (substituteJson(spec.template, { image, digest }) as Record<string, unknown>)
    : undefined;
  const podMeta = isObject(custom?.metadata) ? custom.metadata : {};
  const podSpec = custom
    ? { ...(isObject(custom.spec) ? custom.spec : {}), restartPolicy: 'Never' }
    : defaultPodSpec(spec, image);
  const labels = {
    'app.kubernetes.io/managed-by': 'patchline',
    'patchline.dev/policy': name.slice(0, 63),
    [SCAN_JOB_LABEL]: digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 41),
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: scanJobName(name, digest),
      namespace: policy.metadata?.namespace ?? '',
      labels,
      annotations: { 'patchline.dev/image': image },
      ownerReferences: [
        {
          apiVersion: 'patchline.dev/v1alpha1',
          kind: 'ImagePolicy',
          name,
          uid: policy.metadata?.uid ?? '',
          controller: true,
        },
      ],
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: Math.ceil(parseDuration(spec.timeout ?? '15m') / 1000),
      // A fallback: Patchline deletes the Job once it has read the result.
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { ...podMeta, labels: { ...(isObject(podMeta.labels) ? podMeta.labels : {}), ...labels } },
        spec: podSpec,
      },
    },
  };
}

export type ScanJobState =
  { state: 'running'; detail: string } | { state: 'succeeded' } | { state: 'failed'; detail: string };

/** What a scan Job's status says. */
export function scanJobState(job: unknown): ScanJobState {
  const status = isObject(job) && isObject(job.status) ? job.status : {};
  const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isObject) : [];
  const holds = (type: string) => conditions.find((c) => c.type === type && c.status === 'True');
  const failed = holds('Failed') ?? holds('FailureTarget');
  const text = (v: unknown, otherwise: string) => (typeof v === 'string' ? v : otherwise);
  if (failed)
    return { state: 'failed', detail: `${text(failed.reason, 'Failed')}: ${text(failed.message, '')}`.trim() };
  if (holds('Complete') ?? holds('SuccessCriteriaMet')) return { state: 'succeeded' };
  const active = typeof status.active === 'number' ? status.active : 0;
  return { state: 'running', detail: active > 0 ? 'Running' : 'Queued' };
}
