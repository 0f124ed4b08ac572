// The admission server with cert-manager's files: served once the caches are synced, and a
// rotated certificate (cert-manager rewrites the mounted Secret) served from the next look.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCA, issueServing } from '../../../src/admission/certificates.ts';
import { AdmissionRuntime } from '../../../src/admission/runtime.ts';
import { AdmissionReviewer } from '../../../src/admission/server.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import forge from 'node-forge';
import { freePort } from '../../support/registry-server.ts';
import type { ImageTrust } from '../../../src/controllers/image-trust.ts';

function post(
  port: number,
  ca: string,
  path: string,
  body: string,
  client?: { cert: string; key: string },
): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        ...(client ?? {}),
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        let text = '';
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, serial }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A client certificate signed by `ca`, as an API server's AdmissionConfiguration would present. */
function issueClient(ca: { cert: string; key: string }, commonName: string): { cert: string; key: string } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '0a';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3_600_000);
  const caCert = forge.pki.certificateFromPem(ca.cert);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A reviewer with no policies: every review is allowed (these tests are about serving). */
function emptyReviewer(): AdmissionReviewer {
  return new AdmissionReviewer({
    policies: () => [],
    trust: {} as ImageTrust,
    registrySource: () => {
      throw new Error('not used');
    },
    events: { record: () => undefined },
    log: silentLogger(),
    deadlineMs: 1_000,
  });
}

describe('admission runtime with certificate files (cert-manager)', () => {
  it('waits for the caches, serves the files, and picks up a rotated certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-admission-'));
    const ca = issueCA(new Date());
    const write = (stamp: number) => {
      const serving = issueServing(ca, ['127.0.0.1'], new Date());
      writeFileSync(join(dir, 'tls.crt'), serving.cert);
      writeFileSync(join(dir, 'tls.key'), serving.key);
      for (const f of ['tls.crt', 'tls.key']) utimesSync(join(dir, f), stamp, stamp);
      return new X509Certificate(serving.cert).serialNumber;
    };
    const first = write(1_000);
    let synced = false;
    const port = await freePort();
    const runtime = new AdmissionRuntime({
      host: '127.0.0.1',
      port,
      reviewer: emptyReviewer(),
      certificates: { kind: 'files', dir },
      ready: () => synced,
      log: silentLogger(),
    });
    try {
      await runtime.refresh();
      await assert.rejects(
        post(port, ca.cert, '/admission/enforce', '{}'),
        /ECONNREFUSED/,
        'not serving before the caches sync',
      );
      synced = true;
      await runtime.refresh();
      const review = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u1',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          namespace: 'x',
          operation: 'CREATE',
          object: {},
        },
      });
      const ok = await post(port, ca.cert, '/admission/enforce', review);
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body), {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: 'u1', allowed: true },
      });
      assert.equal(ok.serial, first);
      assert.equal((await post(port, ca.cert, '/admission/enforce', '{"kind":"nope"}')).status, 400);
      assert.equal((await post(port, ca.cert, '/other', review)).status, 404);

      const second = write(2_000);
      await runtime.refresh();
      assert.equal((await post(port, ca.cert, '/admission/warn', review)).serial, second);
    } finally {
      await runtime.stop();
    }
  });

  it('with a client CA, answers only callers that present a certificate it signed (the API server)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-admission-mtls-'));
    const ca = issueCA(new Date());
    const serving = issueServing(ca, ['127.0.0.1'], new Date());
    writeFileSync(join(dir, 'tls.crt'), serving.cert);
    writeFileSync(join(dir, 'tls.key'), serving.key);
    const apiServerCA = issueCA(new Date(), 'kube-apiserver-webhook-client-ca');
    const otherCA = issueCA(new Date(), 'someone-else');
    const port = await freePort();
    const runtime = new AdmissionRuntime({
      host: '127.0.0.1',
      port,
      clientCA: apiServerCA.cert,
      reviewer: emptyReviewer(),
      certificates: { kind: 'files', dir },
      ready: () => true,
      log: silentLogger(),
    });
    try {
      await runtime.refresh();
      const review = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u2',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          namespace: 'x',
          operation: 'CREATE',
          object: {},
        },
      });
      const apiServer = issueClient(apiServerCA, 'kube-apiserver');
      assert.equal((await post(port, ca.cert, '/admission/enforce', review, apiServer)).status, 200);
      // No certificate, or one another CA signed: refused before any request is read.
      await assert.rejects(post(port, ca.cert, '/admission/enforce', review), /certificate|socket hang up|ECONNRESET/);
      await assert.rejects(
        post(port, ca.cert, '/admission/enforce', review, issueClient(otherCA, 'kube-apiserver')),
        /certificate|socket hang up|ECONNRESET|unknown ca/i,
      );
      // A rotated serving certificate keeps the client check.
      const next = issueServing(ca, ['127.0.0.1'], new Date());
      writeFileSync(join(dir, 'tls.crt'), next.cert);
      writeFileSync(join(dir, 'tls.key'), next.key);
      utimesSync(join(dir, 'tls.crt'), 5_000, 5_000);
      await runtime.refresh();
      await assert.rejects(post(port, ca.cert, '/admission/enforce', review), /certificate|socket hang up|ECONNRESET/);
      assert.equal((await post(port, ca.cert, '/admission/enforce', review, apiServer)).status, 200);
    } finally {
      await runtime.stop();
    }
  });
});
