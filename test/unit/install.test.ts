import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../support/fixtures.ts';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

function kubectl(): string {
  const built = join(ROOT, '.cache', 'bin', 'kubectl');
  return existsSync(built) ? built : 'kubectl';
}

describe('install manifests (kubectl kustomize manifests/)', () => {
  let objects: Obj[];
  const find = (kind: string, name: string): Obj => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `${kind} ${name} missing`);
    return o;
  };

  before(function () {
    this.timeout(60_000);
    const out = execFileSync(kubectl(), ['kustomize', join(ROOT, 'manifests')], { encoding: 'utf8' });
    objects = parseAllDocuments(out).map((d) => d.toJS() as Obj);
  });

  it('renders everything an install needs, CRDs included', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    for (const expected of [
      'CustomResourceDefinition/imagepolicies.patchline.dev',
      'CustomResourceDefinition/rebuildtriggers.patchline.dev',
      'Namespace/patchline-system',
      'ServiceAccount/patchline',
      'ClusterRole/patchline-operator',
      'ClusterRoleBinding/patchline-operator',
      'Role/patchline-leader-election',
      'RoleBinding/patchline-leader-election',
      'Deployment/patchline',
      'Service/patchline-metrics',
      'Service/patchline-webhooks',
      'ConfigMap/patchline-config',
      'PodDisruptionBudget/patchline',
      'NetworkPolicy/patchline',
      'Service/patchline-admission',
      'ValidatingWebhookConfiguration/patchline-admission',
      'Role/patchline-admission-tls',
      'RoleBinding/patchline-admission-tls',
    ]) {
      assert.ok(kinds.includes(expected), `${expected} in ${kinds.join(', ')}`);
    }
    for (const o of objects.filter(
      (x) =>
        ![
          'Namespace',
          'CustomResourceDefinition',
          'ClusterRole',
          'ClusterRoleBinding',
          'ValidatingWebhookConfiguration',
        ].includes(x.kind),
    )) {
      assert.equal(o.metadata.namespace, 'patchline-system', `${o.kind}/${o.metadata.name}`);
    }
  });

  it('grants no wildcard anywhere', () => {
    for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const rule of (o.rules as Rule[] | undefined) ?? []) {
        for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames, rule.nonResourceURLs]) {
          assert.ok(
            !(field ?? []).some((v) => v.includes('*')),
            `${o.kind}/${o.metadata.name}: ${JSON.stringify(rule)}`,
          );
        }
      }
    }
  });

  it('lets the operator impersonate ServiceAccounts only: no users, groups or other identities', () => {
    const impersonating = objects
      .filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')
      .flatMap((o) => ((o.rules as Rule[] | undefined) ?? []).filter((r) => r.verbs.includes('impersonate')));
    assert.ok(impersonating.length > 0);
    for (const rule of impersonating) {
      assert.deepEqual(rule.apiGroups, ['']);
      assert.deepEqual(rule.resources, ['serviceaccounts']);
      assert.deepEqual(rule.verbs, ['impersonate']);
    }
  });

  it('grants the operator exactly the verbs its code uses, bound to its ServiceAccount', () => {
    const grants = (o: Obj): string[] =>
      ((o.rules as Rule[]) ?? []).flatMap((r) =>
        (r.apiGroups ?? ['']).flatMap((g) =>
          (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)),
        ),
      );
    assert.deepEqual(grants(find('ClusterRole', 'patchline-operator')).sort(), [
      '/configmaps:get',
      '/pods:list',
      '/pods:watch',
      '/secrets:get',
      '/serviceaccounts:get',
      '/serviceaccounts:impersonate',
      'admissionregistration.k8s.io/validatingwebhookconfigurations:get',
      'admissionregistration.k8s.io/validatingwebhookconfigurations:patch',
      'apps/daemonsets:list',
      'apps/daemonsets:patch',
      'apps/daemonsets:watch',
      'apps/deployments:list',
      'apps/deployments:patch',
      'apps/deployments:watch',
      'apps/statefulsets:list',
      'apps/statefulsets:patch',
      'apps/statefulsets:watch',
      'aquasecurity.github.io/exposedsecretreports:list',
      'aquasecurity.github.io/exposedsecretreports:watch',
      'aquasecurity.github.io/vulnerabilityreports:list',
      'aquasecurity.github.io/vulnerabilityreports:watch',
      'batch/jobs:create',
      'batch/jobs:delete',
      'batch/jobs:get',
      'batch/jobs:list',
      'batch/jobs:watch',
      'events.k8s.io/events:create',
      'events.k8s.io/events:patch',
      'patchline.dev/gitwritebacks/status:update',
      'patchline.dev/gitwritebacks:get',
      'patchline.dev/gitwritebacks:list',
      'patchline.dev/gitwritebacks:watch',
      'patchline.dev/imagepolicies/status:update',
      'patchline.dev/imagepolicies:list',
      'patchline.dev/imagepolicies:patch',
      'patchline.dev/imagepolicies:watch',
      'patchline.dev/rebuildtriggers/status:update',
      'patchline.dev/rebuildtriggers:get',
      'patchline.dev/rebuildtriggers:list',
      'patchline.dev/rebuildtriggers:watch',
      'tekton.dev/pipelineruns:create',
      'tekton.dev/pipelineruns:get',
      'tekton.dev/pipelineruns:list',
      'tekton.dev/pipelineruns:watch',
    ]);
    assert.deepEqual(grants(find('Role', 'patchline-leader-election')).sort(), [
      '/configmaps:create',
      '/configmaps:list',
      '/configmaps:patch',
      '/configmaps:watch',
      'coordination.k8s.io/leases:create',
      'coordination.k8s.io/leases:get',
      'coordination.k8s.io/leases:update',
    ]);
    assert.deepEqual(grants(find('Role', 'patchline-admission-tls')).sort(), ['/secrets:create', '/secrets:update']);
    for (const [kind, name] of [
      ['ClusterRoleBinding', 'patchline-operator'],
      ['RoleBinding', 'patchline-leader-election'],
      ['RoleBinding', 'patchline-admission-tls'],
    ] as const) {
      assert.deepEqual(find(kind, name).subjects, [
        { kind: 'ServiceAccount', name: 'patchline', namespace: 'patchline-system' },
      ]);
    }
  });

  it('sends opted-in namespaces to the admission webhook, never system namespaces, and fails open in time', () => {
    const config = find('ValidatingWebhookConfiguration', 'patchline-admission') as Obj & {
      webhooks: {
        name: string;
        clientConfig: { service: { namespace: string; name: string; path: string } };
        namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
        failurePolicy: string;
        sideEffects: string;
        timeoutSeconds: number;
        rules: { resources: string[] }[];
      }[];
    };
    assert.deepEqual(
      config.webhooks.map((w) => [
        w.name,
        w.clientConfig.service.path,
        w.namespaceSelector.matchExpressions[0]?.values,
      ]),
      [
        ['enforce.admission.patchline.dev', '/admission/enforce', ['enforce']],
        ['enforce-all.admission.patchline.dev', '/admission/enforce/all', ['enforce']],
        ['warn.admission.patchline.dev', '/admission/warn', ['warn']],
        ['warn-all.admission.patchline.dev', '/admission/warn/all', ['warn']],
      ],
    );
    // Exactly one webhook per namespace: the scope label picks the "all" variant or the other.
    assert.deepEqual(
      config.webhooks.map((w) => {
        const scope = w.namespaceSelector.matchExpressions.find((e) => e.key === 'patchline.dev/admission-scope');
        return [scope?.operator, scope?.values];
      }),
      [
        ['NotIn', ['all']],
        ['In', ['all']],
        ['NotIn', ['all']],
        ['In', ['all']],
      ],
    );
    for (const w of config.webhooks) {
      assert.deepEqual(w.clientConfig.service.namespace, 'patchline-system');
      assert.equal(w.clientConfig.service.name, 'patchline-admission');
      const excluded = w.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
      assert.equal(excluded?.operator, 'NotIn');
      for (const ns of ['kube-system', 'patchline-system']) assert.ok(excluded?.values.includes(ns), ns);
      assert.equal(w.failurePolicy, 'Ignore');
      assert.equal(w.sideEffects, 'NoneOnDryRun');
      // The operator's own deadline for signature checks (8 s) is below the API server's.
      assert.equal(w.timeoutSeconds, 10);
      assert.deepEqual(w.rules.flatMap((r) => r.resources).sort(), [
        'cronjobs',
        'daemonsets',
        'deployments',
        'jobs',
        'pods',
        'pods/ephemeralcontainers',
        'replicasets',
        'statefulsets',
      ]);
    }
  });

  it('explains every rule of the operator roles in a comment', () => {
    const text = readFileSync(join(ROOT, 'manifests', 'rbac.yaml'), 'utf8');
    const ruleLines = text.split('\n').filter((l) => /^\s+- apiGroups:/.test(l));
    const commented = text
      .split('\n')
      .filter((l, i, all) => /^\s+- apiGroups:/.test(l) && /^\s+#/.test(all[i - 1] ?? ''));
    // The user-facing aggregated roles are documented as a whole; the operator's rules one by one.
    assert.ok(
      commented.length >= 4 && ruleLines.length - commented.length <= 2,
      `${commented.length}/${ruleLines.length} rules commented`,
    );
  });

  it('admits traffic to the operator only on the ports its container serves', () => {
    const np = find('NetworkPolicy', 'patchline') as Obj & {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { ports: { port: string; protocol: string }[]; from?: unknown[] }[];
      };
    };
    const d = find('Deployment', 'patchline') as Obj & {
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { ports: { name: string }[] }[] };
        };
      };
    };
    const podLabels = d.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(np.spec.podSelector.matchLabels))
      assert.equal(podLabels[k], v, `selects the pods (${k})`);
    assert.deepEqual(np.spec.policyTypes, ['Ingress']);
    const open = np.spec.ingress.flatMap((r) => r.ports.map((p) => `${p.port}/${p.protocol}`)).sort();
    const served = d.spec.template.spec.containers.flatMap((c) => c.ports.map((p) => `${p.name}/TCP`)).sort();
    assert.deepEqual(open, served);
    assert.deepEqual(open, ['http-metrics/TCP', 'http-webhooks/TCP', 'https-admission/TCP']);
  });

  it('runs two non-root replicas with a read-only root filesystem and no privileges', () => {
    const d = find('Deployment', 'patchline') as Obj & {
      spec: {
        replicas: number;
        template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
      };
    };
    assert.equal(d.spec.replicas, 2);
    const pod = d.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'patchline');
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const c = pod.containers[0] as {
      image: string;
      securityContext: Record<string, unknown>;
      resources: { requests: Record<string, string>; limits: Record<string, string> };
      livenessProbe: { httpGet: { path: string } };
      readinessProbe: { httpGet: { path: string } };
      env: { name: string }[];
    };
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    assert.ok(
      c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.cpu && c.resources.limits.memory,
    );
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.ok(['POD_NAME', 'POD_NAMESPACE'].every((n) => c.env.some((e) => e.name === n)));
    assert.match(c.image, /^ghcr\.io\/patchline-dev\/patchline:v\d+\.\d+\.\d+$/);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
  const stages: { from: string; name: string; body: { op: string; args: string }[] }[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ from: m[1]!, name: m[2] ?? '', body: [] });
    } else stages.at(-1)?.body.push(ins);
  }
  const runtime = stages.at(-1)!;

  it('is multi-stage: compile, production dependencies, minimal runtime', () => {
    assert.deepEqual(
      stages.map((s) => s.name),
      ['build', 'deps', 'runtime'],
    );
    // Node 24 on Debian slim: GitOps mode needs the git CLI and OpenSSH's client at run time.
    assert.match(runtime.from, /^node:24\.\d+\.\d+-bookworm-slim$/);
    const build = stages[0]!.body.map((i) => `${i.op} ${i.args}`).join('\n');
    assert.match(build, /RUN npx tsc -p tsconfig\.build\.json/);
    const deps = stages[1]!.body.map((i) => `${i.op} ${i.args}`).join('\n');
    assert.match(deps, /npm ci --omit=dev/);
  });

  it('copies only compiled output, production modules and package.json into the runtime', () => {
    const copies = runtime.body.filter((i) => i.op === 'COPY').map((i) => i.args);
    assert.deepEqual(copies, [
      '--from=deps /app/node_modules ./node_modules',
      '--from=build /src/dist ./dist',
      'package.json ./',
    ]);
  });

  it('carries git and ssh for GitOps write-back, and no package manager of Node', () => {
    const run = runtime.body
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join(' ');
    assert.match(run, /apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates/);
    assert.match(run, /rm -rf \/var\/lib\/apt\/lists/);
    for (const tool of ['npm', 'npx', 'corepack']) assert.match(run, new RegExp(`/usr/local/bin/${tool}\\b`));
    assert.match(run, /useradd --uid 65532/, 'ssh needs the user in /etc/passwd');
  });

  it('runs as a numeric non-root user', () => {
    const user = runtime.body.filter((i) => i.op === 'USER').at(-1)?.args ?? '';
    const [uid] = user.split(':');
    assert.match(uid ?? '', /^\d+$/);
    assert.notEqual(Number(uid), 0);
  });

  it('starts the compiled main module, which the build config emits', () => {
    const entry = runtime.body.find((i) => i.op === 'ENTRYPOINT');
    assert.deepEqual(JSON.parse(entry!.args), ['/usr/local/bin/node', '/app/dist/main.js']);
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      compilerOptions: { rootDir: string; outDir: string };
    };
    assert.equal(build.compilerOptions.outDir, 'dist');
    assert.equal(build.compilerOptions.rootDir, 'src');
    assert.ok(existsSync(join(ROOT, 'src', 'main.ts')));
  });
});
