// Helpers shared by the ImagePolicy end-to-end tests: apply policies and workloads with
// kubectl, read a policy's status, wait for it, and read what the pods run.
import { stringify } from 'yaml';
import type { ImagePolicy, ImagePolicyStatus } from '../../../src/api/v1alpha1/index.ts';
import { env, kubectl } from './env.ts';
import type { Operator } from './operator.ts';

export type Workload = NonNullable<ImagePolicyStatus['workloads']>[number];

export interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    status?: { phase?: string; containerStatuses?: { name: string; imageID?: string; ready?: boolean }[] };
  }[];
}

export function applyPolicy(ns: string, name: string, spec: Record<string, unknown>, annotations = {}): void {
  kubectl(['apply', '-n', ns, '-f', '-'], {
    input: stringify({
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name, annotations },
      spec,
    }),
  });
}

export function applyWorkload(
  ns: string,
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet',
  name: string,
  image: string,
  options: { replicas?: number; labels?: Record<string, string>; podAnnotations?: Record<string, string> } = {},
): void {
  const labels = { app: name, ...(options.labels ?? {}) };
  const spec: Record<string, unknown> = {
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels, annotations: options.podAnnotations ?? {} },
      spec: {
        containers: [
          { name: 'app', image },
          { name: 'sidecar', image: 'registry.example.com/mesh/proxy:1.0' },
        ],
      },
    },
  };
  if (kind !== 'DaemonSet') spec.replicas = options.replicas ?? 1;
  if (kind === 'StatefulSet') spec.serviceName = name;
  kubectl(['apply', '-n', ns, '-f', '-'], {
    input: stringify({ apiVersion: 'apps/v1', kind, metadata: { name, labels }, spec }),
  });
}

function policy(ns: string, name: string): ImagePolicy {
  return JSON.parse(kubectl(['get', 'imagepolicy', name, '-n', ns, '-o', 'json']).stdout) as ImagePolicy;
}

export async function waitForPolicy(
  operator: Operator,
  ns: string,
  name: string,
  what: string,
  test: (s: ImagePolicyStatus) => boolean,
): Promise<ImagePolicyStatus> {
  let last: ImagePolicyStatus = {};
  await operator
    .waitUntil(() => test((last = policy(ns, name).status ?? {})), `${name}: ${what}`, 90_000)
    .catch((err: unknown) => {
      throw new Error(`${String(err)}\nlast status: ${JSON.stringify(last, null, 2)}`);
    });
  return last;
}

export const workload = (s: ImagePolicyStatus, kind: string, name: string): Workload | undefined =>
  s.workloads?.find((w) => w.kind === kind && w.name === name && w.container === 'app');

export function specImage(ns: string, kind: string, name: string, container = 'app'): string {
  return kubectl([
    'get',
    kind.toLowerCase(),
    name,
    '-n',
    ns,
    '-o',
    `jsonpath={.spec.template.spec.containers[?(@.name=="${container}")].image}`,
  ]).stdout;
}

export async function runningPods(ns: string, app: string): Promise<PodList['items']> {
  const list = await env().admin.requestJson<PodList>('GET', `/api/v1/namespaces/${ns}/pods`, {
    query: { labelSelector: `app=${app}` },
  });
  return list.items.filter((p) => !p.metadata.deletionTimestamp && p.status?.phase === 'Running');
}

/** Asks for a reconcile now (Flux's convention), with a value never used before. */
export function requestReconcile(ns: string, name: string, kind = 'imagepolicy'): void {
  kubectl(['annotate', '--overwrite', '-n', ns, kind, name, `patchline.dev/reconcile-requested-at=${Date.now()}`]);
}
