import assert from 'node:assert/strict';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import {
  anchoredRegExp,
  verifiedStatements,
  verifyImageSignature,
  type CosignAuthority,
  type CosignArtifact,
} from '../../../src/verify/signatures.ts';
import { ecKeyPair, SigstoreFixtures, statementFor, type LegacyLayer } from '../../support/sigstore.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const other = `sha256:${'b'.repeat(64)}`;
const ref = 'registry.test/shop/web';
const GITHUB = 'https://token.actions.githubusercontent.com';
const WORKFLOW = 'https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main';

const legacy = (l: LegacyLayer): CosignArtifact => ({ format: 'legacy', ...l, from: 'tag sha256-aaaa.sig' });
const bundle = (b: unknown): CosignArtifact => ({ format: 'bundle', bundle: b, from: 'referrer sha256:cccc' });

describe('cosign signatures', () => {
  let fx: SigstoreFixtures;
  let root: TrustedRoot;
  let rootLoads = 0;
  const options = {
    trustedRoot: () => {
      rootLoads++;
      return Promise.resolve(root);
    },
  };
  const key = ecKeyPair();
  const otherKey = ecKeyPair();
  const byKey = (k = key, ignoreTlog = false): CosignAuthority => ({
    kind: 'key',
    name: 'release',
    publicKey: k.publicKey,
    ignoreTlog,
  });
  const keyless = (subject = WORKFLOW): CosignAuthority => ({
    kind: 'keyless',
    name: 'ci',
    issuer: { exact: GITHUB },
    subject: { exact: subject },
  });

  before(async () => {
    fx = await SigstoreFixtures.create();
    root = TrustedRoot.fromJSON(fx.trustedRoot());
  });
  beforeEach(() => {
    rootLoads = 0;
  });

  describe('legacy .sig layers', () => {
    it('accepts a key signature with a Rekor SET, checked against the trusted root', async () => {
      const layer = await fx.legacySignature(ref, digest, { key });
      const v = await verifyImageSignature(digest, [legacy(layer)], [byKey()], options);
      assert.deepEqual(v, { verified: true, message: 'signed by key release', signer: 'key release' });
      assert.equal(rootLoads, 1);
    });

    it('accepts a key signature without a transparency-log entry only with ignoreTlog, without a trust root', async () => {
      const layer = await fx.legacySignature(ref, digest, { key }, { tlog: false });
      const refused = await verifyImageSignature(digest, [legacy(layer)], [byKey()], options);
      assert.equal(refused.verified, false);
      assert.match(refused.message, /no transparency-log entry \(ignoreTlog is not set\)/);
      const accepted = await verifyImageSignature(digest, [legacy(layer)], [byKey(key, true)], options);
      assert.equal(accepted.verified, true);
      assert.equal(rootLoads, 0);
    });

    it('refuses a signature by another key, naming why', async () => {
      const layer = await fx.legacySignature(ref, digest, { key: otherKey });
      const v = await verifyImageSignature(digest, [legacy(layer)], [byKey()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, /tag sha256-aaaa\.sig: key release: SIGNATURE_ERROR/);
    });

    it('refuses a tampered payload (the SET and signature no longer match)', async () => {
      const layer = await fx.legacySignature(ref, digest, { key });
      const tampered = {
        ...layer,
        payload: Buffer.from(layer.payload.toString().replace('a'.repeat(64), 'b'.repeat(64))),
      };
      const v = await verifyImageSignature(other, [legacy(tampered)], [byKey()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, /_ERROR/);
    });

    it('refuses a valid signature of another digest (a copied .sig tag)', async () => {
      const layer = await fx.legacySignature(ref, other, { key });
      const v = await verifyImageSignature(digest, [legacy(layer)], [byKey()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, new RegExp(`the signature is for ${other}, not ${digest}`));
    });

    it('accepts a keyless signature from the allowed identity, and refuses another identity', async () => {
      const layer = await fx.legacySignature(ref, digest, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      const ok = await verifyImageSignature(digest, [legacy(layer)], [keyless()], options);
      assert.deepEqual(ok, {
        verified: true,
        message: `signed by ${WORKFLOW} (${GITHUB})`,
        signer: `${WORKFLOW} (${GITHUB})`,
      });
      const wrong = await verifyImageSignature(
        digest,
        [legacy(layer)],
        [keyless('https://github.com/acme/other/.github/workflows/build.yml@refs/heads/main')],
        options,
      );
      assert.equal(wrong.verified, false);
      assert.match(wrong.message, new RegExp(`signed by ${WORKFLOW.replace(/[.?/]/g, '\\$&')} from`));
      // A key authority does not accept a certificate signature.
      const byKeyOnly = await verifyImageSignature(digest, [legacy(layer)], [byKey()], options);
      assert.match(byKeyOnly.message, /no keyless identity is allowed/);
    });

    it('matches identity patterns anchored, so a prefix cannot be smuggled in front', async () => {
      const pattern: CosignAuthority = {
        kind: 'keyless',
        name: 'ci',
        issuer: { exact: GITHUB },
        subject: { pattern: anchoredRegExp('https://github\\.com/acme/.*') },
      };
      const good = await fx.legacySignature(ref, digest, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      assert.equal((await verifyImageSignature(digest, [legacy(good)], [pattern], options)).verified, true);
      const evil = await fx.legacySignature(ref, digest, {
        identity: { subject: 'https://evil.example/?https://github.com/acme/x', issuer: GITHUB },
      });
      assert.equal((await verifyImageSignature(digest, [legacy(evil)], [pattern], options)).verified, false);
    });

    it('refuses a certificate that had expired when the signature was logged', async () => {
      const stale = await SigstoreFixtures.create(60 * 60_000);
      const staleRoot = TrustedRoot.fromJSON(stale.trustedRoot());
      const layer = await stale.legacySignature(ref, digest, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      const v = await verifyImageSignature(digest, [legacy(layer)], [keyless()], {
        trustedRoot: () => Promise.resolve(staleRoot),
      });
      assert.equal(v.verified, false);
      assert.match(v.message, /CERTIFICATE_ERROR/);
    });

    it('refuses a keyless signature whose CA is not in the trusted root', async () => {
      const foreign = await SigstoreFixtures.create();
      const layer = await foreign.legacySignature(ref, digest, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      const v = await verifyImageSignature(digest, [legacy(layer)], [keyless()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, /_ERROR/);
    });

    it('reports malformed layers clearly and keeps looking at the others', async () => {
      const good = await fx.legacySignature(ref, digest, { key });
      const noSig = { ...good, annotations: {} };
      const badSet = { ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/bundle': '{"Payload":{}}' } };
      const v1 = await verifyImageSignature(digest, [legacy(noSig), legacy(badSet)], [byKey()], options);
      assert.equal(v1.verified, false);
      assert.match(v1.message, /has no dev\.cosignproject\.cosign\/signature annotation/);
      assert.match(v1.message, /lacks its SET/);
      const v2 = await verifyImageSignature(digest, [legacy(noSig), legacy(good)], [byKey()], options);
      assert.equal(v2.verified, true);
    });

    it('says so when an image has no signature', async () => {
      const v = await verifyImageSignature(digest, [], [byKey()], options);
      assert.deepEqual(v, { verified: false, message: `no cosign signature found for ${digest}` });
    });
  });

  describe('Sigstore bundles (OCI 1.1 referrers)', () => {
    it('accepts a keyless DSSE image-signature bundle with an inclusion proof', async () => {
      const b = await fx.signatureBundle(ref, digest, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      const v = await verifyImageSignature(digest, [bundle(b)], [keyless()], options);
      assert.equal(v.verified, true, v.message);
    });

    it('accepts a key bundle, and refuses one for another digest', async () => {
      const b = await fx.signatureBundle(ref, digest, { key });
      assert.equal((await verifyImageSignature(digest, [bundle(b)], [byKey()], options)).verified, true);
      const v = await verifyImageSignature(other, [bundle(b)], [byKey()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, /subject is not/);
    });

    it('skips attestations among the referrers and refuses garbage', async () => {
      const att = await fx.bundle(statementFor(digest, ref, 'https://slsa.dev/provenance/v1', {}), { key });
      const v = await verifyImageSignature(digest, [bundle(att), bundle({ mediaType: 'nope' })], [byKey()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, /not a valid Sigstore bundle/);
      assert.doesNotMatch(v.message, /slsa/);
    });

    it('refuses a bundle whose DSSE payload was changed after signing', async () => {
      const b = (await fx.signatureBundle(ref, digest, { key })) as { dsseEnvelope: { payload: string } };
      const statement = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString()) as { predicate: object };
      statement.predicate = { injected: true };
      b.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
      const v = await verifyImageSignature(digest, [bundle(b)], [byKey()], options);
      assert.equal(v.verified, false);
      assert.match(v.message, /_ERROR/);
    });
  });

  describe('attestations', () => {
    it('returns the signed statements about the digest, from .att layers and bundles', async () => {
      const vuln = statementFor(digest, ref, 'https://cosign.sigstore.dev/attestation/vuln/v1', { scanner: {} });
      const layer = await fx.legacyAttestation(vuln, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      const b = await fx.bundle(vuln, { key });
      const forged = await fx.legacyAttestation(vuln, { key: otherKey });
      const aboutOther = await fx.bundle(statementFor(other, ref, 'x', {}), { key });
      const r = await verifiedStatements(
        digest,
        [legacy(layer), bundle(b), legacy(forged), bundle(aboutOther)],
        [keyless(), byKey()],
        options,
      );
      assert.equal(r.statements.length, 2);
      assert.equal(r.refused.length, 2);
      assert.match(r.refused[1]!, /subject is not/);
    });
  });
});
