// Installing Patchline into a cluster as users do, shared by the end-to-end tests and the
// demo: the manifests (`kubectl apply -k manifests/`), the in-cluster Deployment scaled to zero
// (the operator runs as a local process instead, with the ServiceAccount's token), and a
// kubeconfig holding that token.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KUBECTL } from './controlplane.ts';
import { ROOT } from './fixtures.ts';

export const OPERATOR_NAMESPACE = 'patchline-system';
export const OPERATOR_SA = 'patchline';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the version-matched kubectl with a kubeconfig. Throws on failure unless allowed. */
export function kubectlWith(
  kubeconfig: string,
  args: string[],
  options: { input?: string; allowFailure?: boolean } = {},
): KubectlResult {
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

/** Applies the install manifests and scales the in-cluster operator to zero. */
export function installPatchline(kubeconfig: string): void {
  kubectlWith(kubeconfig, ['apply', '--server-side', '-k', join(ROOT, 'manifests')]);
  kubectlWith(kubeconfig, ['scale', '-n', OPERATOR_NAMESPACE, 'deployment/patchline', '--replicas=0']);
  kubectlWith(kubeconfig, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/imagepolicies.patchline.dev',
    'crd/rebuildtriggers.patchline.dev',
  ]);
}

/** Writes a kubeconfig that authenticates as the operator's ServiceAccount. */
export function writeServiceAccountKubeconfig(
  adminKubeconfig: string,
  cluster: { server: string; caFile: string },
  path: string,
  account: { name: string; namespace: string } = { name: OPERATOR_SA, namespace: OPERATOR_NAMESPACE },
): void {
  const token = kubectlWith(adminKubeconfig, [
    'create',
    'token',
    account.name,
    '-n',
    account.namespace,
    '--duration=4h',
  ]).stdout.trim();
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'cluster', cluster: { server: cluster.server, 'certificate-authority': cluster.caFile } }],
      users: [{ name: account.name, user: { token } }],
      contexts: [{ name: 'operator', context: { cluster: 'cluster', user: account.name } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
}
