// The end-to-end environment, set up once per run by the root hooks (hooks.ts): a real
// control plane with an audit log, Patchline's CRDs and manifests installed, an admin
// client for the tests, and a kubeconfig holding the token of the ServiceAccount the
// manifests create, for the operator.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KUBECTL, startControlPlane, type ControlPlane } from '../../support/controlplane.ts';
import { ROOT } from '../../support/fixtures.ts';
import { createKubeClient, loadKubeConfig, type KubeClient } from '../../../src/runtime/kube-client.ts';

export const OPERATOR_NAMESPACE = 'patchline-system';
export const OPERATOR_SA = 'patchline';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SA}`;

export interface E2eEnv {
  cp: ControlPlane;
  admin: KubeClient;
  /** Kubeconfig with the operator ServiceAccount's token: what the operator runs with. */
  operatorKubeconfig: string;
  workDir: string;
}

let current: E2eEnv | undefined;

export function env(): E2eEnv {
  if (!current) throw new Error('the e2e environment is not set up (run through test/e2e/.mocharc.json)');
  return current;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the version-matched kubectl as the admin. Throws on failure unless allowed. */
export function kubectl(
  args: string[],
  options: { input?: string; allowFailure?: boolean; kubeconfig?: string } = {},
): KubectlResult {
  const kubeconfig = options.kubeconfig ?? env().cp.kubeconfig;
  const r = spawnSync(KUBECTL, args, {
    input: options.input,
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: kubeconfig },
    timeout: 120_000,
  });
  const result = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (result.code !== 0 && !options.allowFailure) {
    throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  }
  return result;
}

let namespaceCounter = 0;

/** A fresh namespace for one test. */
export function newNamespace(prefix = 'e2e'): string {
  const name = `${prefix}-${process.pid}-${++namespaceCounter}`;
  kubectl(['create', 'namespace', name]);
  return name;
}

export async function setUp(): Promise<E2eEnv> {
  const workDir = mkdtempSync(join(tmpdir(), 'patchline-e2e-'));
  const cp = await startControlPlane({ dir: join(workDir, 'cp'), auditLog: join(workDir, 'audit.log') });
  current = {
    cp,
    admin: await createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig })),
    operatorKubeconfig: '',
    workDir,
  };

  // Install exactly what users install. The Deployment's pods would only be marked Running
  // by the fakelet (no kubelet runs containers here), so it is scaled to zero: the operator
  // under test runs as a local process with the ServiceAccount's token instead.
  kubectl(['apply', '--server-side', '-k', join(ROOT, 'manifests')]);
  kubectl(['scale', '-n', OPERATOR_NAMESPACE, 'deployment/patchline', '--replicas=0']);
  kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/imagepolicies.patchline.dev',
    'crd/rebuildtriggers.patchline.dev',
  ]);

  const token = kubectl(['create', 'token', OPERATOR_SA, '-n', OPERATOR_NAMESPACE, '--duration=4h']).stdout.trim();
  const operatorKubeconfig = join(workDir, 'operator.kubeconfig');
  writeFileSync(
    operatorKubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'testcp',
          cluster: { server: cp.server, 'certificate-authority': join(cp.dir, 'pki', 'apiserver.crt') },
        },
      ],
      users: [{ name: OPERATOR_SA, user: { token } }],
      contexts: [{ name: 'operator', context: { cluster: 'testcp', user: OPERATOR_SA } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  current.operatorKubeconfig = operatorKubeconfig;
  return current;
}

export async function tearDown(): Promise<void> {
  if (!current) return;
  await current.admin.close();
  await current.cp.stop();
  current = undefined;
}
