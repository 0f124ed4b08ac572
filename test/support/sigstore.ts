// Cosign signatures and attestations minted at test time: keys generated here, keyless
// certificates from @sigstore/mock's in-process Fulcio CA (with a CT log for SCTs), Rekor
// entries with SETs and inclusion proofs from its transparency log, and the trusted root
// that names them (what an air-gapped cluster supplies). Nothing leaves the process.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { initializeCA, initializeCTLog, initializeTLog } from '@sigstore/mock';
import { dsse, pem } from '@sigstore/core';
import type { CA } from '@sigstore/mock/dist/fulcio/ca.js';
import { CosignAnnotations, MediaTypes, SIGN_PREDICATE } from '../../src/verify/signatures.ts';

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
  publicPem: string;
}

export function ecKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKey, privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export interface Identity {
  subject: string;
  issuer: string;
}

/** Who signs: a key (cosign sign --key) or a keyless identity (a Fulcio certificate). */
export type SignWith = { key: KeyPair } | { identity: Identity };

export interface SignOptions {
  /** Record the signature in the transparency log (default true). */
  tlog?: boolean;
}

export interface LegacyLayer {
  payload: Buffer;
  mediaType: string;
  annotations: Record<string, string>;
}

/** The mock transparency log, typed here (its own entry type comes from a package not installed). */
interface TLog {
  publicKey: Buffer;
  log(proposedEntry: object): Promise<unknown>;
}

interface LoggedEntry {
  body: string;
  integratedTime: number;
  logID: string;
  logIndex: number;
  verification: {
    signedEntryTimestamp: string;
    inclusionProof: { logIndex: number; treeSize: number; rootHash: string; hashes: string[]; checkpoint: string };
  };
}

const FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const b64 = (b: Buffer | Uint8Array): string => Buffer.from(b).toString('base64');
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

function simpleSigningPayload(reference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': reference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

export function statementFor(digest: string, name: string, predicateType: string, predicate: unknown): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name, digest: { sha256: digest.replace(/^sha256:/, '') } }],
      predicateType,
      predicate,
    }),
  );
}

export class SigstoreFixtures {
  private readonly ca: CA;
  private readonly tlog: TLog;
  private readonly ctlogKey: Buffer;
  private readonly ctlogId: Buffer;
  private constructor(ca: CA, tlog: TLog, ctlogKey: Buffer, ctlogId: Buffer) {
    this.ca = ca;
    this.tlog = tlog;
    this.ctlogKey = ctlogKey;
    this.ctlogId = ctlogId;
  }

  /** @param certificatesIssuedAgoMs issue certificates this long before they are used (default 0). */
  static async create(certificatesIssuedAgoMs = 0): Promise<SigstoreFixtures> {
    const ctlog = await initializeCTLog(ecKeyPair());
    const past = certificatesIssuedAgoMs > 0 ? new Date(Date.now() - certificatesIssuedAgoMs) : undefined;
    const ca = await initializeCA(ecKeyPair(), ctlog, past);
    const tlog = (await initializeTLog('https://rekor.test.invalid', ecKeyPair())) as unknown as TLog;
    return new SigstoreFixtures(ca, tlog, ctlog.publicKey, Buffer.from(ctlog.logID.buffer));
  }

  /** The trusted root naming this CA, CT log and transparency log (JSON, as in a file). */
  trustedRoot(): Record<string, unknown> {
    const start = { start: '2020-01-01T00:00:00Z' };
    const tlogKey = this.tlog.publicKey;
    return {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: 'https://rekor.test.invalid',
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: b64(tlogKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: start },
          logId: { keyId: b64(sha256(tlogKey)) },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
          uri: 'https://fulcio.test.invalid',
          certChain: { certificates: [{ rawBytes: b64(Buffer.from(this.ca.rootCertificate.buffer)) }] },
          validFor: start,
        },
      ],
      ctlogs: [
        {
          baseUrl: 'https://ctfe.test.invalid',
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: b64(this.ctlogKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: start },
          logId: { keyId: b64(this.ctlogId) },
        },
      ],
      timestampAuthorities: [],
    };
  }

  /** A signing key and, for a keyless identity, its Fulcio certificate (PEM). */
  private async signer(by: SignWith): Promise<{ privateKey: KeyObject; verifierPem: string; certificate?: string }> {
    if ('key' in by) return { privateKey: by.key.privateKey, verifierPem: by.key.publicPem };
    const ephemeral = ecKeyPair();
    const der = await this.ca.issueCertificate({
      publicKey: new Uint8Array(ephemeral.publicKey.export({ type: 'spki', format: 'der' })),
      subjectAltName: by.identity.subject,
      extensions: [{ oid: FULCIO_ISSUER_V1, value: by.identity.issuer, legacy: true }],
    });
    const certificate = pem.fromDER(Buffer.from(der.buffer, der.byteOffset, der.byteLength));
    return { privateKey: ephemeral.privateKey, verifierPem: certificate, certificate };
  }

  private async logEntry(body: object): Promise<{ entry: Record<string, unknown>; set: Record<string, unknown> }> {
    const logged = (await this.tlog.log(body)) as Record<string, LoggedEntry>;
    const [e] = Object.values(logged);
    const kind = JSON.parse(Buffer.from(e!.body, 'base64').toString('utf8')) as { kind: string; apiVersion: string };
    const proof = e!.verification.inclusionProof;
    return {
      set: {
        SignedEntryTimestamp: e!.verification.signedEntryTimestamp,
        Payload: { body: e!.body, integratedTime: e!.integratedTime, logIndex: e!.logIndex, logID: e!.logID },
      },
      entry: {
        logIndex: String(e!.logIndex),
        logId: { keyId: b64(Buffer.from(e!.logID, 'hex')) },
        kindVersion: { kind: kind.kind, version: kind.apiVersion },
        integratedTime: String(e!.integratedTime),
        inclusionPromise: { signedEntryTimestamp: e!.verification.signedEntryTimestamp },
        inclusionProof: {
          logIndex: String(proof.logIndex),
          rootHash: b64(Buffer.from(proof.rootHash, 'hex')),
          treeSize: String(proof.treeSize),
          hashes: proof.hashes,
          checkpoint: { envelope: proof.checkpoint },
        },
        canonicalizedBody: e!.body,
      },
    };
  }

  /** A cosign ≤ 2 signature layer (for the sha256-<hex>.sig tag) of `digest`. */
  async legacySignature(
    reference: string,
    digest: string,
    by: SignWith,
    options: SignOptions = {},
  ): Promise<LegacyLayer> {
    const payload = simpleSigningPayload(reference, digest);
    return this.signLegacyPayload(payload, by, options);
  }

  async signLegacyPayload(payload: Buffer, by: SignWith, options: SignOptions = {}): Promise<LegacyLayer> {
    const s = await this.signer(by);
    const signature = sign('sha256', payload, s.privateKey);
    const annotations: Record<string, string> = { [CosignAnnotations.signature]: b64(signature) };
    if (s.certificate) {
      annotations[CosignAnnotations.certificate] = s.certificate;
      annotations[CosignAnnotations.chain] = pem.fromDER(Buffer.from(this.ca.rootCertificate.buffer));
    }
    if (options.tlog !== false) {
      const { set } = await this.logEntry({
        apiVersion: '0.0.1',
        kind: 'hashedrekord',
        spec: {
          data: { hash: { algorithm: 'sha256', value: sha256(payload).toString('hex') } },
          signature: { content: b64(signature), publicKey: { content: b64(Buffer.from(s.verifierPem)) } },
        },
      });
      annotations[CosignAnnotations.bundle] = JSON.stringify(set);
    }
    return { payload, mediaType: MediaTypes.simpleSigning, annotations };
  }

  private async dsse(statement: Buffer, by: SignWith, options: SignOptions) {
    const s = await this.signer(by);
    const signature = sign('sha256', dsse.preAuthEncoding(MediaTypes.inToto, statement), s.privateKey);
    const envelope = {
      payloadType: MediaTypes.inToto,
      payload: b64(statement),
      signatures: [{ keyid: '', sig: b64(signature) }],
    };
    const logged =
      options.tlog === false
        ? undefined
        : await this.logEntry({
            apiVersion: '0.0.1',
            kind: 'dsse',
            spec: {
              signatures: [{ signature: b64(signature), verifier: b64(Buffer.from(s.verifierPem)) }],
              payloadHash: { algorithm: 'sha256', value: sha256(statement).toString('hex') },
              envelopeHash: {
                algorithm: 'sha256',
                value: sha256(Buffer.from(JSON.stringify(envelope))).toString('hex'),
              },
            },
          });
    return { s, envelope, logged };
  }

  /** A cosign ≤ 2 attestation layer (for the sha256-<hex>.att tag). */
  async legacyAttestation(statement: Buffer, by: SignWith, options: SignOptions = {}): Promise<LegacyLayer> {
    const { s, envelope, logged } = await this.dsse(statement, by, options);
    const annotations: Record<string, string> = {};
    if (s.certificate) annotations[CosignAnnotations.certificate] = s.certificate;
    if (logged) annotations[CosignAnnotations.bundle] = JSON.stringify(logged.set);
    return { payload: Buffer.from(JSON.stringify(envelope)), mediaType: MediaTypes.dsse, annotations };
  }

  /** A Sigstore bundle (v0.3, DSSE) as cosign 3 attaches it through the referrers API. */
  async bundle(statement: Buffer, by: SignWith, options: SignOptions = {}): Promise<Record<string, unknown>> {
    const { s, envelope, logged } = await this.dsse(statement, by, options);
    return {
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: {
        ...(s.certificate ? { certificate: { rawBytes: b64(pem.toDER(s.certificate)) } } : { publicKey: { hint: '' } }),
        tlogEntries: logged ? [logged.entry] : [],
        timestampVerificationData: { rfc3161Timestamps: [] },
      },
      dsseEnvelope: envelope,
    };
  }

  /** A cosign 3 image signature bundle for `digest`. */
  async signatureBundle(reference: string, digest: string, by: SignWith, options: SignOptions = {}) {
    return this.bundle(statementFor(digest, reference, SIGN_PREDICATE, {}), by, options);
  }
}
