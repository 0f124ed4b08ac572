// What the write-back edits in a file, byte for byte: only the image values; comments,
// quoting, anchors, block scalars, indentation, blank lines and CRLF line endings stay.
import assert from 'node:assert/strict';
import { editFile, readMarker, valueFor, type ImageTarget } from '../../../src/rollout/git/edit.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const web: ImageTarget = {
  policy: { namespace: 'shop', name: 'web' },
  repository: 'registry.example/shop/web',
  tag: '1.4',
  digest: D2,
  format: 'TagAndDigest',
};
const api: ImageTarget = {
  policy: { namespace: 'shop', name: 'api' },
  repository: 'ghcr.io/acme/api',
  tag: '2.0',
  digest: D2,
  format: 'Digest',
};

describe('git write-back: editing files', () => {
  it('reads markers as Flux writes them, and its own', () => {
    assert.deepEqual(readMarker('# {"$imagepolicy": "flux-system:app"}'), {
      namespace: 'flux-system',
      name: 'app',
      suffix: '',
    });
    assert.deepEqual(readMarker('#{"$imagepolicy": "shop:web:tag"}'), {
      namespace: 'shop',
      name: 'web',
      suffix: 'tag',
    });
    assert.deepEqual(readMarker('# {"$patchline": "shop:web:tag@digest"}'), {
      namespace: 'shop',
      name: 'web',
      suffix: 'tag@digest',
    });
    assert.equal(readMarker('# {"$imagepolicy": "shop:web:bogus"}'), undefined);
    assert.equal(readMarker('# {"$imagepolicy": "no-colon"}'), undefined);
    assert.equal(readMarker('# just a comment'), undefined);
    assert.equal(readMarker('# {not json'), undefined);
  });

  it('writes the digest by default, a tag alone only when asked', () => {
    assert.equal(valueFor(web, ''), `registry.example/shop/web:1.4@${D2}`);
    assert.equal(valueFor({ ...web, format: 'Digest' }, ''), `registry.example/shop/web@${D2}`);
    assert.equal(valueFor({ ...web, format: 'Tag' }, ''), 'registry.example/shop/web:1.4');
    assert.equal(valueFor(web, 'name'), 'registry.example/shop/web');
    assert.equal(valueFor(web, 'tag'), '1.4');
    assert.equal(valueFor(web, 'digest'), D2);
    assert.equal(valueFor(web, 'tag@digest'), `1.4@${D2}`);
  });

  it('rewrites only the marked values of a manifest, keeping everything else', () => {
    const before = [
      '# Deployment of the shop front end',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: web}   # flow map, untouched',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: web',
      `          image: "registry.example/shop/web:1.3@${D1}" # {"$imagepolicy": "shop:web"}`,
      '        - name: sidecar',
      '          image: registry.example/shop/web:1.3 # a comment that is no marker',
      '        - name: other',
      `          image: registry.example/other:1 # {"$imagepolicy": "shop:unknown"}`,
      '  description: |',
      '    keeps # this block',
      '    as it was',
      '',
    ].join('\n');
    const result = editFile('apps/web/deployment.yaml', before, [web]);
    assert.equal(
      result.text,
      before.replace(`"registry.example/shop/web:1.3@${D1}"`, `"registry.example/shop/web:1.4@${D2}"`),
    );
    assert.deepEqual(result.changes, [
      {
        policy: 'shop/web',
        file: 'apps/web/deployment.yaml',
        line: 10,
        from: `registry.example/shop/web:1.3@${D1}`,
        to: `registry.example/shop/web:1.4@${D2}`,
      },
    ]);
    assert.deepEqual(result.problems, []);
  });

  it('edits Helm values with split markers, a marker on the line above, and single quotes', () => {
    const before = [
      'image:',
      '  repository: registry.example/shop/old # {"$imagepolicy": "shop:web:name"}',
      '  tag: \'1.3\' # {"$imagepolicy": "shop:web:tag"}',
      '  # {"$patchline": "shop:web:digest"}',
      '  digest: ""',
      'anchored: &img registry.example/shop/web:1.3 # {"$patchline": "shop:web:tag@digest"}',
      'alias: *img',
      '',
    ].join('\r\n');
    const result = editFile('charts/web/values.yaml', before, [web]);
    assert.equal(
      result.text,
      [
        'image:',
        '  repository: registry.example/shop/web # {"$imagepolicy": "shop:web:name"}',
        '  tag: \'1.4\' # {"$imagepolicy": "shop:web:tag"}',
        '  # {"$patchline": "shop:web:digest"}',
        `  digest: "${D2}"`,
        `anchored: &img 1.4@${D2} # {"$patchline": "shop:web:tag@digest"}`,
        'alias: *img',
        '',
      ].join('\r\n'),
    );
    assert.equal(result.changes.length, 4);
  });

  it('edits Kustomize images entries by repository: newTag and digest, added where missing', () => {
    const before = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      '  - deployment.yaml',
      'images:',
      '  # the front end',
      '  - name: web',
      '    newName: registry.example/shop/web',
      '    newTag: "1.3"',
      '  - name: ghcr.io/acme/api',
      `    digest: ${D1}`,
      '  - {name: nginx, newTag: "1.27"}',
      '',
      '# trailing comment',
      '',
    ].join('\n');
    const result = editFile('clusters/prod/kustomization.yaml', before, [web, api]);
    assert.equal(
      result.text,
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources:',
        '  - deployment.yaml',
        'images:',
        '  # the front end',
        '  - name: web',
        '    newName: registry.example/shop/web',
        '    newTag: "1.4"',
        `    digest: ${D2}`,
        '  - name: ghcr.io/acme/api',
        `    digest: ${D2}`,
        '    newTag: 2.0',
        '  - {name: nginx, newTag: "1.27"}',
        '',
        '# trailing comment',
        '',
      ].join('\n'),
    );
    assert.deepEqual(
      result.changes.map((c) => [c.policy, c.from, c.to]),
      [
        ['shop/web', '1.3', '1.4'],
        ['shop/web', '', `digest: ${D2}`],
        ['shop/api', D1, D2],
        ['shop/api', '', 'newTag: 2.0'],
      ],
    );
  });

  it('adds to a flow entry inside its braces, and drops the digest for a tag-only format', () => {
    const flow = 'images:\n  - {name: registry.example/shop/web, newTag: "1.3"}\n';
    assert.equal(
      editFile('Kustomization', flow, [web]).text,
      `images:\n  - {name: registry.example/shop/web, newTag: "1.4", digest: ${D2}}\n`,
    );
    const pinned = `images:\n  - name: registry.example/shop/web\n    newTag: "1.3"\n    digest: ${D1}\n`;
    assert.equal(
      editFile('base/kustomization.yml', pinned, [{ ...web, format: 'Tag' }]).text,
      'images:\n  - name: registry.example/shop/web\n    newTag: "1.4"\n',
    );
  });

  it('is idempotent: a file that already says it is not changed', () => {
    const text = `image: registry.example/shop/web:1.4@${D2} # {"$imagepolicy": "shop:web"}\n`;
    const result = editFile('app.yaml', text, [web]);
    assert.equal(result.text, text);
    assert.deepEqual(result.changes, []);
    assert.deepEqual(result.found, ['shop/web'], 'the file still names the policy');
  });

  it('leaves alone what it cannot edit safely, saying why', () => {
    const broken = 'image: [unclosed # {"$imagepolicy": "shop:web"}\n';
    assert.deepEqual(editFile('bad.yaml', broken, [web]), {
      text: broken,
      changes: [],
      found: [],
      problems: ['bad.yaml: not valid YAML; left alone'],
    });
    const twoDigests = 'images:\n  - name: registry.example/shop/web\n    newTag: "1"\n';
    const other = { ...web, policy: { namespace: 'shop', name: 'web-canary' }, digest: D1 };
    const result = editFile('kustomization.yaml', twoDigests, [web, other]);
    assert.equal(result.text, twoDigests);
    assert.match(result.problems[0] ?? '', /followed by shop\/web, shop\/web-canary with different digests/);
    assert.equal(editFile('README.md', '{"$imagepolicy": "shop:web"}', [web]).changes.length, 0);
  });
});
