// Cosign signatures and attestations, verified with the Sigstore libraries (@sigstore/verify
// does the cryptography: signature, certificate chain, SCTs, transparency-log proofs); this
// module decides what a verified payload says, and sigstore-bundles.ts turns what cosign
// stores in a registry into Sigstore bundles and verifies them. That half, with the Sigstore
// libraries, is loaded on the first verification: an operator none of whose policies asks
// for a signature never loads them (about 10 MiB). No I/O: the artefacts are fetched by
// cosign-artifacts.ts.
//
// Two storage schemes, both common in fleets today:
//   - legacy tags (cosign ≤ 2): `sha256-<hex>.sig` / `.att`, one layer per signature, the
//     signature, certificate and Rekor SET in layer annotations; turned into v0.1 bundles;
//   - OCI 1.1 referrers (cosign 3 default): an artifact whose single layer is a Sigstore
//     bundle, for image signatures a DSSE envelope of an in-toto statement with the
//     predicate type https://sigstore.dev/cosign/sign/v1.
import type { KeyObject } from 'node:crypto';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import type * as SigstoreBundles from './sigstore-bundles.ts';
import type { NotaryTrustPolicy } from './notary.ts';

export const CosignAnnotations = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  bundle: 'dev.sigstore.cosign/bundle',
} as const;

export const MediaTypes = {
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsse: 'application/vnd.dsse.envelope.v1+json',
  inToto: 'application/vnd.in-toto+json',
} as const;

/** The predicate type of a cosign 3 image signature. */
export const SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const SIMPLE_SIGNING_TYPE = 'cosign container image signature';

/** One thing cosign stored about an image, as fetched, not yet trusted. */
export type CosignArtifact =
  | {
      format: 'legacy';
      /** The layer: a simple-signing payload (.sig) or a DSSE envelope (.att). */
      payload: Buffer;
      mediaType: string;
      annotations: Record<string, string>;
      /** Where it was found, for messages: "tag sha256-….sig". */
      from: string;
    }
  | { format: 'bundle'; bundle: unknown; from: string };

export type Matcher = { exact: string } | { pattern: RegExp };

/** Who may sign with cosign: a key, or a keyless (Fulcio) identity. */
export type CosignAuthority =
  | { kind: 'key'; name: string; publicKey: KeyObject; ignoreTlog: boolean }
  | { kind: 'keyless'; name: string; issuer: Matcher; subject: Matcher };

/** A Notary Project trust policy (notary.ts verifies against it). */
export interface NotationAuthority {
  kind: 'notation';
  name: string;
  policy: NotaryTrustPolicy;
}

export type Authority = CosignAuthority | NotationAuthority;

export const isCosignAuthority = (a: Authority): a is CosignAuthority => a.kind !== 'notation';

/** What a verified artefact says, and who said it. */
export interface VerifiedContent {
  authority: string;
  /** The key's name, or the certificate's subject (and issuer). */
  signer: string;
  /** The simple-signing payload, or the in-toto statement of a DSSE envelope. */
  payload: Buffer;
  payloadType: 'simple-signing' | 'in-toto';
}

export interface SignatureVerdict {
  verified: boolean;
  message: string;
  signer?: string;
}

/**
 * A regular expression from a policy, anchored: `subjectRegExp: https://github.com/acme/.*`
 * must not match https://evil.example/?https://github.com/acme/x. Unanchored matching is the
 * classic hole in Go verifiers' MatchString.
 */
export function anchoredRegExp(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

export function matches(m: Matcher, value: string | undefined): boolean {
  if (value === undefined) return false;
  return 'exact' in m ? m.exact === value : m.pattern.test(value);
}

const describe = (m: Matcher): string => ('exact' in m ? m.exact : `/${m.pattern.source}/`);

export function describeAuthority(a: Authority): string {
  if (a.kind === 'notation') return `Notary trust policy ${a.name}`;
  return a.kind === 'key' ? `key ${a.name}` : `issuer ${describe(a.issuer)} subject ${describe(a.subject)}`;
}

let bundles: Promise<typeof SigstoreBundles> | undefined;
const verifyArtifact: typeof SigstoreBundles.verifyArtifact = async (...args) =>
  (await (bundles ??= import('./sigstore-bundles.ts'))).verifyArtifact(...args);

export interface VerifyOptions {
  /** Loaded only when an artefact needs it (certificates, transparency-log entries). */
  trustedRoot: () => Promise<TrustedRoot>;
}

/** The digests an in-toto statement is about, as sha256:<hex>. */
function statementSubjects(statement: unknown): string[] {
  if (typeof statement !== 'object' || statement === null) return [];
  const subject = (statement as { subject?: unknown }).subject;
  if (!Array.isArray(subject)) return [];
  return subject.flatMap((s: unknown) => {
    const hex = (s as { digest?: { sha256?: unknown } } | null)?.digest?.sha256;
    return typeof hex === 'string' && /^[a-f0-9]{64}$/.test(hex) ? [`sha256:${hex}`] : [];
  });
}

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Why a verified payload is not a signature of `digest`, or undefined when it is. */
function signatureClaimProblem(content: VerifiedContent, digest: string): string | undefined {
  const doc = parseJson(content.payload) as Record<string, unknown> | undefined;
  if (content.payloadType === 'simple-signing') {
    const critical = doc?.critical as { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } | undefined;
    if (critical?.type !== SIMPLE_SIGNING_TYPE && critical?.type !== SIGN_PREDICATE)
      return 'the payload is not a cosign image signature';
    const signed = critical.image?.['docker-manifest-digest'];
    return signed === digest ? undefined : `the signature is for ${String(signed)}, not ${digest}`;
  }
  if (doc === undefined) return 'the statement is not JSON';
  if (doc.predicateType !== SIGN_PREDICATE) return 'not an image signature';
  return statementSubjects(doc).includes(digest) ? undefined : `the statement's subject is not ${digest}`;
}

/**
 * Whether the image at `digest` carries a valid signature from one of the authorities. The
 * message says who signed, or why each artefact found was refused.
 */
export async function verifyImageSignature(
  digest: string,
  artifacts: readonly CosignArtifact[],
  authorities: readonly CosignAuthority[],
  options: VerifyOptions,
): Promise<SignatureVerdict> {
  if (artifacts.length === 0) return { verified: false, message: `no cosign signature found for ${digest}` };
  const problems: string[] = [];
  for (const artifact of artifacts) {
    const result = await verifyArtifact(artifact, authorities, options);
    if ('failure' in result) {
      problems.push(result.failure);
      continue;
    }
    const problem = signatureClaimProblem(result.content, digest);
    if (problem === 'not an image signature') continue; // an attestation among the referrers
    if (problem) {
      problems.push(`${artifact.from}: ${problem}`);
      continue;
    }
    return { verified: true, message: `signed by ${result.content.signer}`, signer: result.content.signer };
  }
  if (problems.length === 0) return { verified: false, message: `no cosign signature found for ${digest}` };
  const shown = problems.slice(0, 3).join('; ');
  return {
    verified: false,
    message: `no valid signature: ${shown}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`,
  };
}

/** The in-toto statements about `digest` that one of the authorities signed (attestations). */
export async function verifiedStatements(
  digest: string,
  artifacts: readonly CosignArtifact[],
  authorities: readonly CosignAuthority[],
  options: VerifyOptions,
): Promise<{ statements: unknown[]; refused: string[] }> {
  const statements: unknown[] = [];
  const refused: string[] = [];
  for (const artifact of artifacts) {
    const result = await verifyArtifact(artifact, authorities, options);
    if ('failure' in result) {
      refused.push(result.failure);
      continue;
    }
    if (result.content.payloadType !== 'in-toto') continue;
    const statement = parseJson(result.content.payload);
    if (!statementSubjects(statement).includes(digest)) {
      refused.push(`${artifact.from}: the statement's subject is not ${digest}`);
      continue;
    }
    statements.push(statement);
  }
  return { statements, refused };
}
