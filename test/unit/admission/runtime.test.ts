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
import { freePort } from '../../support/registry-server.ts';
import type { ImageTrust } from '../../../src/controllers/image-trust.ts';

function post(
  port: number,
  ca: string,
  path: string,
  body: string,
): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
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
      reviewer: new AdmissionReviewer({
        policies: () => [],
        trust: {} as ImageTrust,
        registrySource: () => {
          throw new Error('not used');
        },
        events: { record: () => undefined },
        log: silentLogger(),
        deadlineMs: 1_000,
      }),
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
});
