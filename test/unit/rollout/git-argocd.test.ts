// Argo CD's parameter override file (.argocd-source-<app>.yaml), as Argo CD reads it and Argo CD
// Image Updater writes it: kustomize images entries or Helm parameters.
import assert from 'node:assert/strict';
import { editOverride, overrideFile } from '../../../src/rollout/git/argocd.ts';
import type { ImageTarget } from '../../../src/rollout/git/edit.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const web: ImageTarget = {
  policy: { namespace: 'shop', name: 'web' },
  repository: 'registry.example/shop/web',
  tag: '1.4',
  digest: D2,
  format: 'TagAndDigest',
};

describe('Argo CD override files', () => {
  it('lives in the Application source path', () => {
    assert.equal(
      overrideFile({ application: 'shop-web', path: 'apps/shop/web/' }),
      'apps/shop/web/.argocd-source-shop-web.yaml',
    );
    assert.equal(overrideFile({ application: 'web', path: '.' }), '.argocd-source-web.yaml');
  });

  it('adds a kustomize images entry to a new file, and replaces it later, keeping other images', () => {
    const first = editOverride('', web, { application: 'web', path: 'apps' });
    assert.equal(first.text, `kustomize:\n  images:\n  - registry.example/shop/web:1.4@${D2}\n`);
    assert.deepEqual(first.changes, [
      {
        policy: 'shop/web',
        file: 'apps/.argocd-source-web.yaml',
        line: 0,
        from: '',
        to: `kustomize.images: registry.example/shop/web:1.4@${D2}`,
      },
    ]);
    const withOther = `kustomize:\n  images:\n  - nginx:1.27\n  - registry.example/shop/web:1.3@${D1}\n`;
    const second = editOverride(withOther, web, { application: 'web', path: 'apps' });
    assert.equal(second.text, `kustomize:\n  images:\n  - nginx:1.27\n  - registry.example/shop/web:1.4@${D2}\n`);
    assert.deepEqual(editOverride(second.text, web, { application: 'web', path: 'apps' }).changes, [], 'idempotent');
  });

  it('writes an alias entry when the manifests name the image differently', () => {
    const r = editOverride('kustomize:\n  images:\n  - web=old:1\n', web, {
      application: 'web',
      path: '.',
      alias: 'web',
    });
    assert.equal(r.text, `kustomize:\n  images:\n  - web=registry.example/shop/web:1.4@${D2}\n`);
  });

  it('writes Helm parameters, sorted, with tag@digest or a separate digest parameter', () => {
    const helm = editOverride(
      'helm:\n  parameters:\n  - name: replicaCount\n    value: "3"\n    forcestring: true\n',
      web,
      { application: 'web', path: '.', helm: { image: 'image.repository', tag: 'image.tag' } },
    );
    assert.equal(
      helm.text,
      [
        'helm:',
        '  parameters:',
        '  - name: image.repository',
        '    value: registry.example/shop/web',
        '    forcestring: true',
        '  - name: image.tag',
        `    value: 1.4@${D2}`,
        '    forcestring: true',
        '  - name: replicaCount',
        '    value: "3"',
        '    forcestring: true',
        '',
      ].join('\n'),
    );
    const split = editOverride('', web, {
      application: 'web',
      path: '.',
      helm: { image: 'image.repository', tag: 'image.tag', digest: 'image.digest' },
    });
    assert.match(split.text, new RegExp(`name: image.digest\\n    value: ${D2}`));
    assert.match(split.text, /name: image.tag\n {4}value: "1.4"/);
  });

  it('leaves a file that is not a mapping alone, saying so', () => {
    assert.deepEqual(editOverride('- a\n', web, { application: 'web', path: '.' }), {
      text: '- a\n',
      changes: [],
      problems: ['.argocd-source-web.yaml: not a YAML mapping; left alone'],
    });
  });
});
