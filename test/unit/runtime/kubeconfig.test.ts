import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { createKubeClient } from '../../../src/runtime/kube-client.ts';
import { KubeConfigError, loadKubeConfig } from '../../../src/runtime/kubeconfig.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('kubeconfig', () => {
  let dir: string;
  let home: string;
  let saDir: string;
  const environment = (env: NodeJS.ProcessEnv = {}) => ({ env, home, serviceAccountDir: saDir });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-kubeconfig-'));
    home = join(dir, 'home');
    saDir = join(dir, 'sa');
    mkdirSync(home);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, doc: object): string => {
    const path = join(dir, name);
    writeFileSync(path, stringify(doc));
    return path;
  };
  const config = (overrides: { cluster?: object; user?: object; current?: string; name?: string } = {}) => ({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://api.example:6443/', ...overrides.cluster } }],
    users: [{ name: 'u', user: overrides.user ?? { token: 'tok' } }],
    contexts: [{ name: overrides.name ?? 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': overrides.current ?? 'ctx',
  });

  it('reads inline certificates and a token, and drops the trailing slash of the server', () => {
    const file = write(
      'kc',
      config({
        cluster: { 'certificate-authority-data': b64('CA'), 'tls-server-name': 'api.internal' },
        user: { token: 'tok', 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
      }),
    );
    const c = loadKubeConfig({ kubeconfig: file }, environment());
    assert.equal(c.server, 'https://api.example:6443');
    assert.deepEqual(c.tls, {
      rejectUnauthorized: true,
      ca: Buffer.from('CA'),
      cert: Buffer.from('CERT'),
      key: Buffer.from('KEY'),
      servername: 'api.internal',
    });
    assert.deepEqual(c.credentials, { type: 'token', token: 'tok' });
    assert.equal(c.origin, `kubeconfig ${file}, context ctx`);
  });

  it('reads certificate and token files relative to the kubeconfig that names them', () => {
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'pki', 'c.crt'), 'CERT-FILE');
    writeFileSync(join(dir, 'pki', 'c.key'), 'KEY-FILE');
    const file = write(
      'kc',
      config({
        cluster: { 'certificate-authority': 'pki/ca.crt' },
        user: { 'client-certificate': 'pki/c.crt', 'client-key': 'pki/c.key', tokenFile: 'pki/token' },
      }),
    );
    const c = loadKubeConfig({ kubeconfig: file }, environment());
    assert.deepEqual(c.tls.ca, Buffer.from('CA-FILE'));
    assert.deepEqual(c.tls.cert, Buffer.from('CERT-FILE'));
    assert.deepEqual(c.tls.key, Buffer.from('KEY-FILE'));
    assert.deepEqual(c.credentials, { type: 'tokenFile', path: join(dir, 'pki', 'token') });
  });

  it('takes basic auth, and no credentials at all', () => {
    const basic = loadKubeConfig(
      { kubeconfig: write('a', config({ user: { username: 'admin', password: 'pw' } })) },
      environment(),
    );
    assert.deepEqual(basic.credentials, { type: 'basic', username: 'admin', password: 'pw' });
    const none = loadKubeConfig({ kubeconfig: write('b', config({ user: {} })) }, environment());
    assert.deepEqual(none.credentials, { type: 'none' });
  });

  it('merges a $KUBECONFIG list: the first file to name an entry wins, missing files are skipped', () => {
    const first = write('one', { ...config({ user: { token: 'first' } }), clusters: [] });
    const second = write('two', config({ user: { token: 'second' }, current: 'other' }));
    const c = loadKubeConfig({}, environment({ KUBECONFIG: [join(dir, 'missing'), first, second].join(delimiter) }));
    assert.deepEqual(c.credentials, { type: 'token', token: 'first' });
    assert.equal(c.server, 'https://api.example:6443');
    assert.match(c.origin, /context ctx$/);
  });

  it('uses the context asked for', () => {
    const file = write('kc', {
      ...config(),
      clusters: [
        { name: 'c', cluster: { server: 'https://one:6443' } },
        { name: 'd', cluster: { server: 'https://two:6443' } },
      ],
      contexts: [
        { name: 'ctx', context: { cluster: 'c', user: 'u' } },
        { name: 'staging', context: { cluster: 'd', user: 'u' } },
      ],
    });
    assert.equal(loadKubeConfig({ kubeconfig: file, context: 'staging' }, environment()).server, 'https://two:6443');
  });

  it('prefers $KUBECONFIG to in-cluster, and in-cluster to ~/.kube/config', () => {
    mkdirSync(saDir);
    writeFileSync(join(saDir, 'token'), 'sa-token');
    writeFileSync(join(saDir, 'ca.crt'), 'SA-CA');
    mkdirSync(join(home, '.kube'));
    writeFileSync(join(home, '.kube', 'config'), stringify(config({ cluster: { server: 'https://home:6443' } })));
    const inCluster = loadKubeConfig(
      {},
      environment({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }),
    );
    assert.equal(inCluster.server, 'https://[fd00::1]:443');
    assert.deepEqual(inCluster.tls, { rejectUnauthorized: true, ca: Buffer.from('SA-CA') });
    assert.deepEqual(inCluster.credentials, { type: 'tokenFile', path: join(saDir, 'token') });
    assert.equal(inCluster.origin, 'in-cluster');
    const listed = write('kc', config({ cluster: { server: 'https://listed:6443' } }));
    const fromEnv = loadKubeConfig({}, environment({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBECONFIG: listed }));
    assert.equal(fromEnv.server, 'https://listed:6443');
    assert.equal(loadKubeConfig({}, environment()).server, 'https://home:6443');
  });

  it('explains what is wrong with a kubeconfig', () => {
    const cases: [object | string, RegExp][] = [
      [{ ...config(), 'current-context': '' }, /no current-context and no --context given/],
      [config({ current: 'gone' }), /context "gone" not found/],
      [{ ...config(), clusters: [] }, /cluster "c" of context "ctx" not found/],
      [{ ...config(), users: [] }, /user "u" of context "ctx" not found/],
      [config({ cluster: { server: undefined } }), /the cluster has no server/],
      [
        config({ cluster: { server: 'http://api:8080' } }),
        /plain http; that is only allowed with insecure-skip-tls-verify/,
      ],
      [config({ user: { 'client-certificate-data': b64('C') } }), /a client certificate needs its key/],
      [
        config({ user: { 'client-key': 'nope.key', 'client-certificate-data': b64('C') } }),
        /client-key .*nope\.key cannot be read/,
      ],
      [config({ user: { token: 42 } }), /token must be a string/],
      [{ ...config(), users: { u: {} } }, /users must be a list/],
      [{ ...config(), contexts: [{ context: {} }] }, /every entry of contexts needs a name/],
      ['clusters: [unclosed', /cannot be read/],
    ];
    for (const [doc, message] of cases) {
      const file = join(dir, 'bad');
      writeFileSync(file, typeof doc === 'string' ? doc : stringify(doc));
      assert.throws(
        () => loadKubeConfig({ kubeconfig: file }, environment()),
        (err: Error) => {
          assert.ok(err instanceof KubeConfigError, String(err));
          assert.match(err.message, message);
          return true;
        },
      );
    }
    assert.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') }, environment()), /does not exist/);
    assert.throws(() => loadKubeConfig({}, environment()), /no cluster configured/);
  });

  it('plain http is allowed with insecure-skip-tls-verify', () => {
    const file = write(
      'kc',
      config({ cluster: { server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true } }),
    );
    assert.equal(loadKubeConfig({ kubeconfig: file }, environment()).tls.rejectUnauthorized, false);
  });

  describe('requests authenticate as the kubeconfig says', () => {
    let server: Server;
    let seen: IncomingHttpHeaders[];
    let url: string;
    beforeEach(async () => {
      seen = [];
      server = createServer((req, res) => {
        seen.push(req.headers);
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterEach(() => new Promise<void>((r) => server.close(() => r())));

    const clientFor = (user: object) =>
      createKubeClient(
        loadKubeConfig(
          { kubeconfig: write('kc', config({ cluster: { server: url, 'insecure-skip-tls-verify': true }, user })) },
          environment(),
        ),
      );

    it('a token file is read when requests are made', async () => {
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, 'first\n');
      const client = await clientFor({ tokenFile });
      await client.requestJson('GET', '/api');
      assert.equal(seen[0]!.authorization, 'Bearer first');
      await client.close();
    });

    it('basic auth and a static token', async () => {
      const basic = await clientFor({ username: 'admin', password: 'pw' });
      await basic.requestJson('GET', '/api');
      await basic.close();
      const token = await clientFor({ token: 'static' });
      await token.requestJson('GET', '/api');
      await token.close();
      assert.deepEqual(
        seen.map((h) => h.authorization),
        [`Basic ${b64('admin:pw')}`, 'Bearer static'],
      );
    });

    it('an exec credential plugin runs (through client-node, loaded for it)', async () => {
      const plugin = join(dir, 'plugin.sh');
      writeFileSync(
        plugin,
        `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}'\n`,
      );
      chmodSync(plugin, 0o755);
      const client = await clientFor({
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' },
      });
      await client.requestJson('GET', '/api');
      assert.equal(seen[0]!.authorization, 'Bearer from-plugin');
      await client.close();
    });
  });
});
