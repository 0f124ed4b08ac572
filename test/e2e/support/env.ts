// The end-to-end environment, set up once per run by the root hooks (hooks.ts): a real
// control plane with an audit log, Patchline's CRDs and manifests installed, an admin
// client for the tests, and a kubeconfig holding the token of the ServiceAccount the
// manifests create, for the operator.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../support/controlplane.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_SA,
  installPatchline,
  kubectlWith,
  writeServiceAccountKubeconfig,
  type KubectlResult,
} from '../../support/install.ts';
import { createKubeClient, loadKubeConfig, type KubeClient } from '../../../src/runtime/kube-client.ts';

export { OPERATOR_NAMESPACE };
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

/** Runs the version-matched kubectl as the admin. Throws on failure unless allowed. */
export function kubectl(
  args: string[],
  options: { input?: string; allowFailure?: boolean; kubeconfig?: string } = {},
): KubectlResult {
  return kubectlWith(options.kubeconfig ?? env().cp.kubeconfig, args, options);
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
  installPatchline(cp.kubeconfig);
  const operatorKubeconfig = join(workDir, 'operator.kubeconfig');
  writeServiceAccountKubeconfig(
    cp.kubeconfig,
    { server: cp.server, caFile: join(cp.dir, 'pki', 'apiserver.crt') },
    operatorKubeconfig,
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
