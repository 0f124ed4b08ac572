import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { request } from 'node:https';
import { pemCertificates, planRotation, serviceHosts, type TlsMaterial } from '../../../src/admission/certificates.ts';

const DAY = 86_400_000;
const hosts = serviceHosts('patchline-admission', 'patchline-system', ['127.0.0.1']);

describe('admission certificates', () => {
  const t0 = new Date('2026-11-22T00:00:00Z');
  let first: TlsMaterial;

  before(() => {
    const plan = planRotation(undefined, hosts, t0);
    assert.deepEqual(plan.reasons, ['missing']);
    first = plan.next!;
  });

  it('issues a CA and a serving certificate for the Service names, signed by it', () => {
    const ca = new X509Certificate(first.ca.cert);
    const serving = new X509Certificate(first.serving.cert);
    assert.ok(ca.ca);
    assert.ok(serving.checkIssued(ca));
    assert.ok(serving.verify(ca.publicKey));
    assert.equal(
      serving.subjectAltName,
      'DNS:patchline-admission.patchline-system.svc, DNS:patchline-admission.patchline-system.svc.cluster.local, IP Address:127.0.0.1',
    );
    assert.deepEqual(pemCertificates(first.caBundle), [first.ca.cert.trim() + '\n']);
  });

  it('serves TLS that a client trusting only the bundle accepts', async () => {
    const server = createServer({ cert: first.serving.cert, key: first.serving.key }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const body = await new Promise<string>((resolve, reject) => {
        request({ host: '127.0.0.1', port, ca: first.caBundle, servername: undefined }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(body, 'ok');
    } finally {
      server.close();
    }
  });

  it('keeps good material as it is', () => {
    assert.deepEqual(planRotation(first, hosts, new Date(t0.getTime() + 30 * DAY)), { reasons: [] });
  });

  it('renews the serving certificate when a third of its life is left, or when the names change', () => {
    const late = planRotation(first, hosts, new Date(t0.getTime() + 70 * DAY));
    assert.deepEqual(late.reasons, ['serving-expiring']);
    assert.equal(late.next?.ca.cert, first.ca.cert, 'same CA');
    assert.notEqual(late.next?.serving.cert, first.serving.cert);
    const renamed = planRotation(first, [...hosts, 'patchline.example.com'], new Date(t0.getTime() + DAY));
    assert.deepEqual(renamed.reasons, ['serving-hosts-changed']);
  });

  it('rotates the CA before it expires, trusting both CAs until the old one expires', () => {
    const rotated = planRotation(first, hosts, new Date(t0.getTime() + 4 * 365 * DAY)).next!;
    assert.notEqual(rotated.ca.cert, first.ca.cert);
    assert.equal(pemCertificates(rotated.caBundle).length, 2);
    assert.ok(new X509Certificate(rotated.serving.cert).checkIssued(new X509Certificate(rotated.ca.cert)));
    // Serving certificates are renewed meanwhile; once the old CA has expired it leaves the bundle.
    const renewed = {
      ...rotated,
      serving: planRotation(rotated, hosts, new Date(t0.getTime() + 5 * 365 * DAY)).next!.serving,
    };
    const later = planRotation(renewed, hosts, new Date(t0.getTime() + 5 * 365 * DAY + 2 * DAY));
    assert.deepEqual(later.reasons, ['expired-ca-dropped']);
    assert.deepEqual(pemCertificates(later.next!.caBundle), [rotated.ca.cert.trim() + '\n']);
  });

  it('reissues what is unreadable', () => {
    const plan = planRotation({ ...first, serving: { cert: 'garbage', key: 'garbage' } }, hosts, t0);
    assert.deepEqual(plan.reasons.slice(0, 1), ['unreadable']);
    assert.ok(plan.next);
  });
});
