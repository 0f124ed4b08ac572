// Notary Project verification without a registry: envelopes that notation-go made (fixtures in
// test/fixtures/notation, written by test/notation's notation-sign against a local registry:
// signed 2026-12-06, expiring 30 days later, certificates valid until 2027-12-06), judged at
// fixed times, and the malformed envelopes, chains and trust policies a registry or a user can
// hand the verifier.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  algorithmForKey,
  NotaryHeaders,
  NotaryMediaTypes,
  parseNotaryEnvelope,
} from '../../../src/verify/notary-envelope.ts';
import {
  applicablePolicies,
  chainProblem,
  parseDistinguishedName,
  parseTrustedIdentity,
  verifyNotarySignatures,
  type NotaryTrustPolicy,
} from '../../../src/verify/notary.ts';
import { ROOT } from '../../support/fixtures.ts';

const dir = join(ROOT, 'test', 'fixtures', 'notation');
const read = (f: string) => readFileSync(join(dir, f));
const DIGEST = read('digest.txt').toString().trim();
const JWS = read('signature.jws');
const COSE = read('signature.cose');
const pemCerts = (pem: string) =>
  [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map(
    (m) => new X509Certificate(m[0]),
  );
const ROOT_CERT = pemCerts(read('ca.pem').toString())[0]!;
const CHAIN = pemCerts(read('leaf.pem').toString());
const REPO = '127.0.0.1:5000/app';
const VALID_NOW = new Date('2026-12-10T00:00:00Z');

const policy = (over: Partial<NotaryTrustPolicy> = {}): NotaryTrustPolicy => ({
  name: 'acme',
  registryScopes: ['*'],
  trustStore: { ca: [ROOT_CERT], signingAuthority: [] },
  crls: [],
  trustedIdentities: [parseTrustedIdentity('x509.subject: C=US, ST=WA, O=Acme')],
  level: 'strict',
  ...over,
});
const jwsBlob = (envelope = JWS) => ({ mediaType: NotaryMediaTypes.jws, envelope, from: 'referrer jws' });
const coseBlob = (envelope = COSE) => ({ mediaType: NotaryMediaTypes.cose, envelope, from: 'referrer cose' });

/** The JWS fixture with its protected header changed (the signature no longer matters: parsing fails first). */
function jwsWithHeader(change: (h: Record<string, unknown>) => void): Buffer {
  const doc = JSON.parse(JWS.toString()) as { protected: string };
  const header = JSON.parse(Buffer.from(doc.protected, 'base64url').toString()) as Record<string, unknown>;
  change(header);
  doc.protected = Buffer.from(JSON.stringify(header)).toString('base64url');
  return Buffer.from(JSON.stringify(doc));
}

describe('Notary Project envelopes', () => {
  it('reads both envelopes notation-go wrote: scheme, times, chain, and a valid ES256 signature', () => {
    for (const [mediaType, body] of [
      [NotaryMediaTypes.jws, JWS],
      [NotaryMediaTypes.cose, COSE],
    ] as const) {
      const env = parseNotaryEnvelope(mediaType, body);
      assert.equal(env.signatureValid, true, mediaType);
      assert.equal(env.algorithm, 'ES256');
      assert.equal(env.signingScheme, 'notary.x509');
      assert.equal(env.chain.length, 3);
      assert.equal(env.timestamped, false);
      assert.ok(env.signingTime && env.expiry && env.expiry > env.signingTime);
      assert.equal(env.expiry.getTime() - env.signingTime.getTime(), 720 * 3600_000);
      assert.match(env.signingAgent ?? '', /^notation-go\//);
      assert.equal(
        (JSON.parse(env.payload.toString()) as { targetArtifact: { digest: string } }).targetArtifact.digest,
        DIGEST,
      );
    }
  });

  it('refuses malformed envelopes with a reason', () => {
    const cases: [string, Buffer, RegExp][] = [
      [NotaryMediaTypes.jws, Buffer.from('not json'), /not JSON/],
      [NotaryMediaTypes.jws, Buffer.from('{"protected":"%%%"}'), /not base64url/],
      [NotaryMediaTypes.cose, Buffer.from([0xff, 0x00, 0x13]), /not valid CBOR/],
      [NotaryMediaTypes.cose, Buffer.from([0x83, 0x01, 0x02, 0x03]), /not a COSE_Sign1 message/],
      ['application/pdf', JWS, /unknown envelope type/],
      [
        NotaryMediaTypes.jws,
        jwsWithHeader((h) => (h.crit = [...(h.crit as string[]), 'io.example.magic'])),
        /unsupported critical header "io.example.magic"/,
      ],
      [
        NotaryMediaTypes.jws,
        jwsWithHeader((h) => (h.crit = [NotaryHeaders.signingScheme])),
        /"io.cncf.notary.expiry" must be listed as critical/,
      ],
      [NotaryMediaTypes.jws, jwsWithHeader((h) => (h.alg = 'ES384')), /says ES384 but the signing key needs ES256/],
      [NotaryMediaTypes.jws, jwsWithHeader((h) => (h.alg = 'none')), /unsupported signature algorithm/],
      [NotaryMediaTypes.jws, jwsWithHeader((h) => (h.cty = 'text/plain')), /payload content type is text\/plain/],
      [
        NotaryMediaTypes.jws,
        jwsWithHeader((h) => (h[NotaryHeaders.signingScheme] = 'notary.v0')),
        /unknown signing scheme "notary.v0"/,
      ],
    ];
    for (const [mediaType, body, reason] of cases) assert.throws(() => parseNotaryEnvelope(mediaType, body), reason);
  });

  it('names the one algorithm each key may sign with', () => {
    const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve }).publicKey;
    const rsa = (modulusLength: number) => generateKeyPairSync('rsa', { modulusLength }).publicKey;
    assert.equal(algorithmForKey(ec('P-256')), 'ES256');
    assert.equal(algorithmForKey(ec('P-384')), 'ES384');
    assert.equal(algorithmForKey(ec('P-521')), 'ES512');
    assert.equal(algorithmForKey(rsa(2048)), 'PS256');
    assert.equal(algorithmForKey(rsa(1024)), undefined);
    assert.equal(algorithmForKey(generateKeyPairSync('ed25519').publicKey), undefined);
  });
});

describe('Notary Project trust policies', () => {
  it('accepts the signature while it and the chain are valid, in both envelopes', async () => {
    for (const blob of [jwsBlob(), coseBlob()]) {
      const verdict = await verifyNotarySignatures(DIGEST, REPO, [blob], [policy()], VALID_NOW);
      assert.equal(verdict.verified, true, verdict.message);
      assert.match(
        verdict.message,
        /^signed by C=US, ST=WA, L=Seattle, O=Acme, CN=release \(Notary (JWS|COSE), trust policy acme\)$/,
      );
    }
  });

  it('enforces or logs expiry and the chain validity as the level says', async () => {
    const afterExpiry = new Date('2027-01-10T00:00:00Z');
    let verdict = await verifyNotarySignatures(DIGEST, REPO, [jwsBlob()], [policy()], afterExpiry);
    assert.deepEqual(verdict, {
      verified: false,
      message: 'no valid Notary signature: referrer jws: the signature expired at 2027-01-05T17:54:51.000Z',
    });
    verdict = await verifyNotarySignatures(DIGEST, REPO, [jwsBlob()], [policy({ level: 'permissive' })], afterExpiry);
    assert.equal(verdict.verified, true);
    assert.match(verdict.message, /\(logged: the signature expired at 2027-01-05/);

    const certsExpired = new Date('2028-01-01T00:00:00Z');
    verdict = await verifyNotarySignatures(DIGEST, REPO, [coseBlob()], [policy()], certsExpired);
    assert.match(verdict.message, /CN=release expired at 2027-12-06T17:54:50.000Z \(now\)/);
    verdict = await verifyNotarySignatures(DIGEST, REPO, [coseBlob()], [policy({ level: 'audit' })], certsExpired);
    assert.equal(verdict.verified, true, verdict.message);
  });

  it('checks authenticity: the trust store, then the identity; audit only logs it', async () => {
    const noAnchor = policy({ trustStore: { ca: [], signingAuthority: [ROOT_CERT] } });
    let verdict = await verifyNotarySignatures(DIGEST, REPO, [jwsBlob()], [noAnchor], VALID_NOW);
    assert.match(verdict.message, /does not reach the ca trust store/);
    const strangers = policy({ trustedIdentities: [parseTrustedIdentity('x509.subject: C=US, ST=WA, O=Evil Corp')] });
    verdict = await verifyNotarySignatures(DIGEST, REPO, [jwsBlob()], [strangers], VALID_NOW);
    assert.match(verdict.message, /O=Acme, CN=release is not a trusted identity/);
    verdict = await verifyNotarySignatures(DIGEST, REPO, [jwsBlob()], [{ ...strangers, level: 'audit' }], VALID_NOW);
    assert.equal(verdict.verified, true);
    assert.match(verdict.message, /logged: .* is not a trusted identity/);
    verdict = await verifyNotarySignatures(
      DIGEST,
      REPO,
      [jwsBlob()],
      [{ ...strangers, override: { authenticity: 'log' } }],
      VALID_NOW,
    );
    assert.equal(verdict.verified, true);
  });

  it('refuses a signature of another digest and says when nothing applies or nothing was found', async () => {
    const other = `sha256:${'0'.repeat(64)}`;
    let verdict = await verifyNotarySignatures(other, REPO, [jwsBlob()], [policy()], VALID_NOW);
    assert.match(verdict.message, new RegExp(`the signature is for ${DIGEST}, not ${other}`));
    verdict = await verifyNotarySignatures(DIGEST, REPO, [], [policy()], VALID_NOW);
    assert.deepEqual(verdict, { verified: false, message: `no Notary signature found for ${DIGEST}` });
    verdict = await verifyNotarySignatures(
      DIGEST,
      REPO,
      [jwsBlob()],
      [policy({ registryScopes: ['example.com/x'] })],
      VALID_NOW,
    );
    assert.deepEqual(verdict, { verified: false, message: `no Notary trust policy applies to ${REPO}` });
  });

  it('reads the trust store CRL: a signer it does not list passes, and a stale CRL leaves revocation unknown', async () => {
    const crl = Buffer.from(
      read('ca.crl')
        .toString()
        .replace(/-----[A-Z0-9 ]+-----|\s/g, ''),
      'base64',
    );
    let verdict = await verifyNotarySignatures(DIGEST, REPO, [coseBlob()], [policy({ crls: [crl] })], VALID_NOW);
    assert.equal(verdict.verified, true, verdict.message);
    const staleCrl = new Date('2026-12-20T00:00:00Z'); // next update was due 2026-12-13
    verdict = await verifyNotarySignatures(DIGEST, REPO, [coseBlob()], [policy({ crls: [crl] })], staleCrl);
    assert.match(
      verdict.message,
      /the CRL of .*CN=Patchline Test Signing CA expired at 2026-12-13.*: revocation unknown/,
    );
    verdict = await verifyNotarySignatures(
      DIGEST,
      REPO,
      [coseBlob()],
      [policy({ crls: [crl], level: 'permissive' })],
      staleCrl,
    );
    assert.equal(verdict.verified, true, verdict.message);
  });

  it('a flipped signature byte fails integrity, whatever the level', async () => {
    const doc = JSON.parse(JWS.toString()) as { signature: string };
    const sig = Buffer.from(doc.signature, 'base64url');
    sig[5] = sig[5]! ^ 0xff;
    doc.signature = sig.toString('base64url');
    const verdict = await verifyNotarySignatures(
      DIGEST,
      REPO,
      [jwsBlob(Buffer.from(JSON.stringify(doc)))],
      [policy({ level: 'audit' })],
      VALID_NOW,
    );
    assert.match(verdict.message, /the signature does not match the signed content/);
  });

  it('checks the shape of the code-signing chain', () => {
    assert.equal(chainProblem(CHAIN), undefined);
    assert.match(chainProblem([CHAIN[0]!]) ?? '', /a single certificate must be self-signed/);
    assert.match(chainProblem([CHAIN[0]!, CHAIN[2]!]) ?? '', /is not issued by/);
    assert.match(chainProblem(CHAIN.slice(1)) ?? '', /the signing certificate is a CA certificate/);
    assert.match(chainProblem([CHAIN[0]!, CHAIN[1]!]) ?? '', /is not a self-signed root/);
  });

  it('reads distinguished names and trusted identities as notation does', () => {
    assert.deepEqual(
      [...parseDistinguishedName('C=US, ST=WA, O=Acme, CN=release')],
      [
        ['C', 'US'],
        ['ST', 'WA'],
        ['O', 'Acme'],
        ['CN', 'release'],
      ],
    );
    assert.throws(() => parseDistinguishedName('C=US, C=CA'), /repeats C/);
    assert.equal(parseTrustedIdentity(' * '), '*');
    assert.throws(() => parseTrustedIdentity('x509.subject: C=US, O=Acme'), /must name ST/);
    assert.throws(() => parseTrustedIdentity('CN=release'), /neither "\*" nor "x509.subject: …"/);
  });

  it('applies the policies scoped to the repository, else the global ones', () => {
    const exact = policy({ name: 'exact', registryScopes: [REPO] });
    const global = policy({ name: 'global' });
    assert.deepEqual(
      applicablePolicies([global, exact], REPO).map((p) => p.name),
      ['exact'],
    );
    assert.deepEqual(
      applicablePolicies([global, exact], 'example.com/other').map((p) => p.name),
      ['global'],
    );
    assert.deepEqual(applicablePolicies([exact], 'example.com/other'), []);
  });
});
