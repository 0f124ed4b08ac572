// Cosign artefacts as Sigstore bundles, verified against the policy's authorities with
// @sigstore/verify. Loaded on demand by signatures.ts (see there why).
import { createHash } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { pem } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { PolicyError, VerificationError, Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import {
  CosignAnnotations,
  MediaTypes,
  describeAuthority,
  matches,
  type CosignAuthority,
  type CosignArtifact,
  type VerifiedContent,
  type VerifyOptions,
} from './signatures.ts';

/** The trust root that proves nothing: enough for keys used without a transparency log. */
const EMPTY_TRUSTED_ROOT: TrustedRoot = TrustedRoot.fromJSON({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
});

class ArtifactFormatError extends Error {}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ArtifactFormatError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function certificatesOf(annotations: Record<string, string>): { rawBytes: string }[] {
  const cert = annotations[CosignAnnotations.certificate];
  if (!cert) return [];
  const chain = annotations[CosignAnnotations.chain] ?? '';
  const pems = [cert, ...(chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])];
  return pems.map((p) => ({ rawBytes: pem.toDER(p).toString('base64') }));
}

/** The Rekor SET annotation ({SignedEntryTimestamp, Payload{body, integratedTime, logIndex, logID}}) as a tlog entry. */
function tlogEntryOf(annotation: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    throw new ArtifactFormatError(`the ${CosignAnnotations.bundle} annotation is not JSON`);
  }
  const o = asObject(parsed, `the ${CosignAnnotations.bundle} annotation`);
  const p = asObject(o.Payload, 'its Payload');
  if (
    typeof o.SignedEntryTimestamp !== 'string' ||
    typeof p.body !== 'string' ||
    typeof p.integratedTime !== 'number' ||
    typeof p.logIndex !== 'number' ||
    typeof p.logID !== 'string' ||
    !/^[0-9a-f]+$/.test(p.logID)
  ) {
    throw new ArtifactFormatError(
      `the ${CosignAnnotations.bundle} annotation lacks its SET, body, time, index or log id`,
    );
  }
  let body: Record<string, unknown>;
  try {
    body = asObject(JSON.parse(Buffer.from(p.body, 'base64').toString('utf8')), 'the Rekor entry body');
  } catch (err) {
    throw new ArtifactFormatError(
      err instanceof ArtifactFormatError ? err.message : 'the Rekor entry body is not base64 JSON',
    );
  }
  return {
    logIndex: String(p.logIndex),
    logId: { keyId: Buffer.from(p.logID, 'hex').toString('base64') },
    kindVersion: { kind: String(body.kind), version: String(body.apiVersion) },
    integratedTime: String(p.integratedTime),
    inclusionPromise: { signedEntryTimestamp: o.SignedEntryTimestamp },
    canonicalizedBody: p.body,
  };
}

/**
 * A legacy .sig or .att layer as a v0.1 Sigstore bundle (the format whose tlog entries carry
 * only an inclusion promise, which is what the SET annotation is).
 */
function legacyToBundle(artifact: Extract<CosignArtifact, { format: 'legacy' }>): Bundle {
  const a = artifact.annotations;
  const certificates = certificatesOf(a);
  const set = a[CosignAnnotations.bundle];
  const verificationMaterial: Record<string, unknown> = {
    ...(certificates.length > 0 ? { x509CertificateChain: { certificates } } : { publicKey: { hint: 'patchline' } }),
    tlogEntries: set ? [tlogEntryOf(set)] : [],
    timestampVerificationData: { rfc3161Timestamps: [] },
  };
  const json: Record<string, unknown> = {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial,
  };
  if (artifact.mediaType === MediaTypes.dsse) {
    let envelope: Record<string, unknown>;
    try {
      envelope = asObject(JSON.parse(artifact.payload.toString('utf8')), 'the DSSE envelope');
    } catch (err) {
      throw new ArtifactFormatError(err instanceof ArtifactFormatError ? err.message : 'the DSSE envelope is not JSON');
    }
    json.dsseEnvelope = envelope;
  } else {
    const signature = a[CosignAnnotations.signature];
    if (!signature) throw new ArtifactFormatError(`the layer has no ${CosignAnnotations.signature} annotation`);
    json.messageSignature = {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(artifact.payload).digest('base64') },
      signature,
    };
  }
  return parseBundle(json);
}

function parseBundle(json: unknown): Bundle {
  try {
    return bundleFromJSON(json);
  } catch (err) {
    throw new ArtifactFormatError(`not a valid Sigstore bundle: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function errorText(err: unknown): string {
  if (err instanceof VerificationError || err instanceof PolicyError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** An artefact read as a bundle: what it signs and what it carries to prove it. */
interface ReadArtifact {
  bundle: Bundle;
  payload: Buffer;
  payloadType: VerifiedContent['payloadType'];
  hasCertificate: boolean;
  hasTlog: boolean;
}

/** The artefact as a bundle with its signed payload, or why it cannot be verified at all. */
function readArtifact(artifact: CosignArtifact): ReadArtifact | { failure: string } {
  let bundle: Bundle;
  try {
    bundle = artifact.format === 'legacy' ? legacyToBundle(artifact) : parseBundle(artifact.bundle);
  } catch (err) {
    return { failure: `${artifact.from}: ${errorText(err)}` };
  }
  const material = bundle.verificationMaterial;
  const content = bundle.content;
  const payload =
    content.$case === 'dsseEnvelope'
      ? Buffer.from(content.dsseEnvelope.payload)
      : artifact.format === 'legacy'
        ? artifact.payload
        : undefined;
  if (!payload) {
    // A message-signature bundle signs bytes we do not have (the signed blob is not stored).
    return { failure: `${artifact.from}: a message-signature bundle does not say what was signed` };
  }
  if (content.$case === 'dsseEnvelope' && content.dsseEnvelope.payloadType !== MediaTypes.inToto) {
    return { failure: `${artifact.from}: DSSE payload type ${content.dsseEnvelope.payloadType} is not in-toto` };
  }
  return {
    bundle,
    payload,
    payloadType: content.$case === 'dsseEnvelope' ? 'in-toto' : 'simple-signing',
    hasCertificate: material.content.$case === 'x509CertificateChain' || material.content.$case === 'certificate',
    hasTlog: material.tlogEntries.length > 0,
  };
}

type AuthorityVerdict = { signer: string } | { failure: string } | undefined;

/** A key authority: the signature verifies with its key (and a log entry, unless ignoreTlog). */
function verifyWithKey(
  authority: Extract<CosignAuthority, { kind: 'key' }>,
  read: ReadArtifact,
  root: TrustedRoot,
  entity: ReturnType<typeof toSignedEntity>,
): AuthorityVerdict {
  if (read.hasCertificate) return undefined; // a certificate's key is not one of ours
  if (!read.hasTlog && !authority.ignoreTlog)
    return { failure: `${describeAuthority(authority)}: no transparency-log entry (ignoreTlog is not set)` };
  const trust = toTrustMaterial(root, () => ({ publicKey: authority.publicKey, validFor: () => true }));
  const thresholds = read.hasTlog
    ? { ctlogThreshold: 0 }
    : { tlogThreshold: 0, timestampThreshold: 0, ctlogThreshold: 0 };
  try {
    new Verifier(trust, thresholds).verify(entity);
    return { signer: `key ${authority.name}` };
  } catch (err) {
    return { failure: `${describeAuthority(authority)}: ${errorText(err)}` };
  }
}

/** A keyless identity: the certificate chains to the trust root and names the issuer and subject. */
function verifyKeyless(
  authority: Exclude<CosignAuthority, { kind: 'key' }>,
  read: ReadArtifact,
  root: TrustedRoot,
  entity: ReturnType<typeof toSignedEntity>,
): AuthorityVerdict {
  if (!read.hasCertificate) return undefined;
  try {
    const signer = new Verifier(toTrustMaterial(root)).verify(entity);
    const subject = signer.identity?.subjectAlternativeName;
    const issuer = signer.identity?.extensions?.issuer;
    if (!matches(authority.issuer, issuer) || !matches(authority.subject, subject))
      return {
        failure: `${describeAuthority(authority)}: signed by ${subject ?? '(no subject)'} from ${issuer ?? '(no issuer)'}`,
      };
    return { signer: `${subject ?? ''} (${issuer ?? ''})` };
  } catch (err) {
    return { failure: `${describeAuthority(authority)}: ${errorText(err)}` };
  }
}

/**
 * Verifies one artefact against the authorities (any one suffices). Returns what it says, or
 * why no authority accepts it. A trust-root failure is thrown: it is not the artefact's fault.
 */
export async function verifyArtifact(
  artifact: CosignArtifact,
  authorities: readonly CosignAuthority[],
  options: VerifyOptions,
): Promise<{ content: VerifiedContent } | { failure: string }> {
  const read = readArtifact(artifact);
  if ('failure' in read) return read;
  const root = read.hasCertificate || read.hasTlog ? await options.trustedRoot() : EMPTY_TRUSTED_ROOT;
  const entity = toSignedEntity(read.bundle, read.payload);
  const failures: string[] = [];
  for (const authority of authorities) {
    const verdict =
      authority.kind === 'key'
        ? verifyWithKey(authority, read, root, entity)
        : verifyKeyless(authority, read, root, entity);
    if (verdict && 'signer' in verdict)
      return {
        content: {
          authority: authority.name,
          signer: verdict.signer,
          payload: read.payload,
          payloadType: read.payloadType,
        },
      };
    if (verdict) failures.push(verdict.failure);
  }
  if (failures.length === 0) {
    failures.push(
      read.hasCertificate
        ? 'signed with a certificate, but no keyless identity is allowed'
        : 'signed with a key, but no key is allowed',
    );
  }
  return { failure: `${artifact.from}: ${failures.join('; ')}` };
}
