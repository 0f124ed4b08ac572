// The on-demand scan Job as pure functions: its name, what the default Job runs and mounts, a
// custom template with its substitutions, and what a Job's status says.
import assert from 'node:assert/strict';
import type { ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import { scanJob, scanJobName, scanJobState, type OnDemandScanSpec } from '../../../src/verify/scan-job.ts';

const DIGEST = `sha256:${'c0ffee'.repeat(10)}abcd`;
const policy = {
  apiVersion: 'patchline.dev/v1alpha1',
  kind: 'ImagePolicy',
  metadata: { name: 'web', namespace: 'shop', uid: 'uid-1' },
  spec: { image: 'registry.example.com/shop/web' },
} as unknown as ImagePolicy;
const spec: OnDemandScanSpec = {
  signingKeySecretName: 'scan-key',
  publicKey: { secretRef: { name: 'scan-pub' } },
  registryAuthSecretName: 'push-creds',
};

type Container = { name: string; image: string; args: string[]; volumeMounts: { name: string }[] };
type Job = {
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: { kind: string; uid: string }[];
  };
  spec: {
    activeDeadlineSeconds: number;
    backoffLimit: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        restartPolicy: string;
        initContainers?: Container[];
        containers: Container[];
        volumes?: { name: string; secret?: { secretName: string } }[];
      };
    };
  };
};

describe('on-demand scan Jobs', () => {
  it('are named after the policy and the digest, within 63 characters', () => {
    assert.equal(scanJobName('web', DIGEST), 'scan-web-c0ffeec0ffee');
    const long = scanJobName('a'.repeat(80), DIGEST);
    assert.ok(long.length <= 63, long);
    assert.match(long, /^scan-a+-c0ffeec0ffee$/);
    assert.equal(scanJobName('web.v2', DIGEST), 'scan-web-v2-c0ffeec0ffee');
  });

  it('by default scan with Trivy, then attest with cosign and the mounted key, owned by the policy', () => {
    const job = scanJob(policy, spec, 'registry.example.com/shop/web', DIGEST) as unknown as Job;
    const image = `registry.example.com/shop/web@${DIGEST}`;
    assert.equal(job.metadata.name, 'scan-web-c0ffeec0ffee');
    assert.equal(job.metadata.namespace, 'shop');
    assert.equal(job.metadata.labels['app.kubernetes.io/managed-by'], 'patchline');
    assert.deepEqual(
      job.metadata.ownerReferences.map((o) => [o.kind, o.uid]),
      [['ImagePolicy', 'uid-1']],
    );
    assert.equal(job.spec.activeDeadlineSeconds, 900);
    assert.equal(job.spec.backoffLimit, 0);
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal((pod as { automountServiceAccountToken?: boolean }).automountServiceAccountToken, false);
    assert.deepEqual(pod.initContainers?.[0]?.args, [
      'image',
      '--quiet',
      '--format',
      'cosign-vuln',
      '--output',
      '/scan/vuln.json',
      image,
    ]);
    const attest = pod.containers[0]!;
    assert.equal(attest.args.at(-1), image);
    assert.ok(attest.args.includes('--tlog-upload=false'));
    assert.deepEqual(attest.args.slice(attest.args.indexOf('--key'), attest.args.indexOf('--key') + 2), [
      '--key',
      '/key/cosign.key',
    ]);
    assert.deepEqual(
      pod.volumes?.map((v) => [v.name, v.secret?.secretName]),
      [
        ['scan', undefined],
        ['key', 'scan-key'],
        ['docker', 'push-creds'],
      ],
    );
    assert.deepEqual(job.spec.template.metadata.labels, job.metadata.labels);
  });

  it('take a custom template, substituting $(image) and $(digest), keeping restartPolicy Never', () => {
    const custom: OnDemandScanSpec = {
      ...spec,
      timeout: '2m',
      template: {
        metadata: { labels: { team: 'security' } },
        spec: {
          restartPolicy: 'Always',
          containers: [
            { name: 'grype', image: 'anchore/grype', args: ['$(image)', '--digest=$(digest)', '$(unknown)'] },
          ],
        },
      },
    };
    const job = scanJob(policy, custom, 'registry.example.com/shop/web', DIGEST) as unknown as Job;
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.deepEqual(pod.containers[0]!.args, [
      `registry.example.com/shop/web@${DIGEST}`,
      `--digest=${DIGEST}`,
      '$(unknown)',
    ]);
    assert.equal(job.spec.template.metadata.labels.team, 'security');
    assert.equal(job.spec.activeDeadlineSeconds, 120);
  });

  it('read a Job status as running, succeeded or failed', () => {
    assert.deepEqual(scanJobState(undefined), { state: 'running', detail: 'Queued' });
    assert.deepEqual(scanJobState({ status: { active: 1 } }), { state: 'running', detail: 'Running' });
    assert.deepEqual(scanJobState({ status: { conditions: [{ type: 'Complete', status: 'True' }] } }), {
      state: 'succeeded',
    });
    assert.deepEqual(
      scanJobState({
        status: {
          conditions: [
            {
              type: 'Failed',
              status: 'True',
              reason: 'DeadlineExceeded',
              message: 'Job was active longer than specified deadline',
            },
          ],
        },
      }),
      { state: 'failed', detail: 'DeadlineExceeded: Job was active longer than specified deadline' },
    );
    assert.deepEqual(scanJobState({ status: { conditions: [{ type: 'Complete', status: 'False' }] } }), {
      state: 'running',
      detail: 'Queued',
    });
  });
});
