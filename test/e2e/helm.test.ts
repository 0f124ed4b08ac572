// The Helm chart's objects are valid for a real API server (schemas, CEL rules, webhooks'
// fields): rendered by the real helm CLI and applied as a server-side dry run, with default
// values and with the options that add objects (ingress, NodePort, Fail policy, no PDB).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CHART, HELM } from '../support/helm.ts';
import { kubectl, newNamespace } from './support/env.ts';

function render(namespace: string, sets: string[]): string {
  const r = spawnSync(
    HELM,
    ['template', 'patchline', CHART, '--namespace', namespace, '--include-crds', ...sets.flatMap((s) => ['--set', s])],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('Helm chart on a real API server', () => {
  for (const [what, sets] of [
    ['default values', []],
    [
      'ingress, NodePort, Fail policy, no PDB, two namespaces watched',
      [
        'webhooks.ingress.enabled=true',
        'webhooks.ingress.host=hooks.example.com',
        'webhooks.service.type=NodePort',
        'admission.failurePolicy=Fail',
        'podDisruptionBudget.enabled=false',
        'watchNamespaces={shop,payments}',
      ],
    ],
  ] as const) {
    it(`accepts every object it renders (${what})`, () => {
      const ns = newNamespace('helm');
      const r = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], {
        input: render(ns, [...sets]),
        allowFailure: true,
      });
      assert.equal(r.code, 0, r.stderr);
      for (const kind of [
        'customresourcedefinition.apiextensions.k8s.io/imagepolicies.patchline.dev',
        'deployment.apps/patchline',
        'validatingwebhookconfiguration.admissionregistration.k8s.io/patchline-admission',
      ])
        assert.match(
          r.stdout,
          new RegExp(`${kind.replace(/\./g, '\\.')} (created|configured|unchanged) \\(server dry run\\)`),
        );
    });
  }
});
