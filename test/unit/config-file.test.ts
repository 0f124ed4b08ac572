import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config.ts';
import { parseConfigFile } from '../../src/config-file.ts';

describe('config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-config-'));
  writeFileSync(join(dir, 'token'), 'tok-1\n');
  writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(dir, 'empty'), '');

  it('reads registries and receivers; secrets stay in their files and are read when used', () => {
    const c = parseConfigFile(
      `
registries:
  - host: registry.internal:5000
    insecure: true
  - host: harbor.example.com
    caFile: ca.pem
    maxConcurrency: 2
    requestsPerMinute: 120
webhooks:
  maxBodyBytes: 65536
  receivers:
    - name: internal
      format: distribution
      registry: registry.internal:5000
      auth: { type: bearer, tokenFile: token }
    - name: hub
      format: dockerhub
      auth: { type: path, tokenFile: token }
    - name: gh
      format: github
      auth: { type: hmac, keyFile: token }
`,
      dir,
    );
    assert.deepEqual(c.registries[0], { host: 'registry.internal:5000', insecure: true });
    assert.match(c.registries[1]?.ca ?? '', /BEGIN CERTIFICATE/);
    assert.equal(c.registries[1]?.requestsPerMinute, 120);
    assert.equal(c.webhooks.maxBodyBytes, 65536);
    assert.deepEqual(
      c.webhooks.receivers.map((r) => [r.name, r.format, r.auth.type, r.registry]),
      [
        ['internal', 'distribution', 'bearer', 'registry.internal:5000'],
        ['hub', 'dockerhub', 'path', undefined],
        ['gh', 'github', 'hmac', undefined],
      ],
    );
    const auth = c.webhooks.receivers[0]!.auth;
    assert.equal(auth.type === 'bearer' ? auth.token() : '', 'tok-1');
    writeFileSync(join(dir, 'token'), 'tok-2\n');
    assert.equal(auth.type === 'bearer' ? auth.token() : '', 'tok-2', 'a rotated secret is picked up');
  });

  it('reports every problem, naming the field', () => {
    try {
      parseConfigFile(
        `
registries:
  - host: "https://bad host"
  - host: ok.example.com
    insecure: "yes"
    maxConcurrency: 0
webhooks:
  receivers:
    - name: Bad_Name
      format: distribution
      auth: { type: bearer, tokenFile: token }
    - name: open
      format: generic
    - name: twice
      format: quay
      auth: { type: bearer, tokenFile: missing-file }
    - name: twice
      format: quay
      auth: { type: path, tokenFile: token }
    - name: nope
      format: gitea
      auth: { type: bearer, tokenFile: token }
    - name: blank
      format: harbor
      auth: { type: basic, passwordFile: empty }
unknown: 1
`,
        dir,
      );
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const text = err.problems.join('\n');
      assert.match(text, /registries\[0\]\.host must be a registry host/);
      assert.match(text, /registries\[1\]\.insecure must be true or false/);
      assert.match(text, /registries\[1\]\.maxConcurrency must be a whole number/);
      assert.match(text, /receivers\[0\]\.name must be lower-case/);
      assert.match(text, /receivers\[1\]\.auth\.type must be one of .*every receiver is authenticated/);
      assert.match(text, /receivers\[2\]\.auth\.tokenFile: cannot read .*missing-file/);
      assert.match(text, /receivers\[3\]\.name "twice" is used twice/);
      assert.match(text, /receivers\[4\]\.format must be one of/);
      assert.match(text, /receivers\[5\]\.auth\.passwordFile: .*empty is empty/);
      assert.match(text, /receivers\[5\]\.auth\.username is required/);
      assert.match(text, /unknown key "unknown"/);
    }
  });

  it('reads where build services call back, which turns callbacks on', () => {
    const c = parseConfigFile('webhooks:\n  buildCallbackURL: http://patchline-webhooks.patchline-system.svc/\n', dir);
    assert.equal(c.webhooks.buildCallbackURL, 'http://patchline-webhooks.patchline-system.svc');
    assert.equal(c.webhooks.buildCallbacks, true);
    for (const bad of ['ftp://x', 'http://user:pw@host', 'http://host/?q=1', 'patchline-webhooks'])
      assert.throws(
        () => parseConfigFile(`webhooks:\n  buildCallbackURL: "${bad}"\n`, dir),
        /buildCallbackURL must be an http\(s\) URL without credentials, query or fragment/,
        bad,
      );
  });

  it('reads the scanner a registry has, for policies that name none', () => {
    const c = parseConfigFile(
      [
        'registries:',
        '  - host: harbor.example.com',
        '    scanner: { type: harbor }',
        '  - host: shopacr.azurecr.io',
        '    scanner: { type: defender, subscriptions: [00000000-0000-0000-0000-000000000001] }',
        '  - host: quay.internal',
        '    scanner: { type: quay, url: "https://quay.internal/" }',
        '  - host: plain.example.com',
      ].join('\n'),
      dir,
    );
    assert.deepEqual(c.scanners, {
      'harbor.example.com': { type: 'harbor' },
      'shopacr.azurecr.io': { type: 'defender', subscriptions: ['00000000-0000-0000-0000-000000000001'] },
      'quay.internal': { type: 'quay', url: 'https://quay.internal/' },
    });
    assert.throws(
      () => parseConfigFile('registries:\n  - host: h.example.com\n    scanner: { type: clair }\n', dir),
      /registries\[0\]\.scanner\.type must be one of harbor, ecr, artifactAnalysis, defender, quay/,
    );
  });

  it('accepts an empty file', () => {
    assert.deepEqual(parseConfigFile('', dir), { registries: [], webhooks: { receivers: [] }, sigstore: {} });
  });

  it('reads the Sigstore trust root settings: a trusted root file, or a TUF mirror, not both', () => {
    writeFileSync(join(dir, 'trusted_root.json'), '{}');
    assert.deepEqual(parseConfigFile('sigstore: {trustedRootFile: trusted_root.json}', dir).sigstore, {
      file: join(dir, 'trusted_root.json'),
    });
    assert.deepEqual(
      parseConfigFile('sigstore: {tuf: {mirrorURL: "https://tuf.internal", rootFile: token, cachePath: tuf}}', dir)
        .sigstore,
      { tuf: { mirrorURL: 'https://tuf.internal', rootFile: join(dir, 'token'), cachePath: join(dir, 'tuf') } },
    );
    assert.throws(
      () => parseConfigFile('sigstore: {trustedRootFile: missing.json, tuf: {mirrorURL: "ftp://x"}, extra: 1}', dir),
      (err: unknown) => {
        const text = String((err as ConfigError).message);
        assert.match(text, /sigstore\.trustedRootFile: cannot read/);
        assert.match(text, /sigstore\.tuf\.mirrorURL must be an http\(s\) URL/);
        assert.match(text, /sigstore: unknown key "extra"/);
        return true;
      },
    );
  });

  it('rejects what is not YAML or not a mapping', () => {
    assert.throws(() => parseConfigFile('a: [', dir), /not valid YAML/);
    assert.throws(() => parseConfigFile('- a', dir), /must be a mapping/);
    // What YAML only warns about (and would print as a process warning) is refused too.
    assert.throws(() => parseConfigFile('registries: !custom []', dir), /not valid YAML: .*Unresolved tag: !custom/);
    assert.throws(() => parseConfigFile('%FOO bar\n---\nregistries: []', dir), /not valid YAML: .*Unknown directive/);
  });
});
