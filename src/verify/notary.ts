// Notary Project signature verification (notaryproject/specifications, trust-store-trust-policy.md
// and signing-and-verification-workflow.md), the way notation applies a trust policy: the
// envelope's integrity (signature, well-formed code-signing chain), its authenticity (the chain
// reaches a certificate of the policy's trust store, and the signer is a trusted identity), the
// authentic timestamp (the chain is valid now, or at the signing authority's signing time),
// expiry, and revocation by the CRLs the trust store carries. Each check after integrity is
// enforced or only logged as the policy's level and overrides say.
//
// Not done, and said so in docs/trust.md: RFC 3161 timestamp countersignatures are not
// verified (a timestamped signature is judged by the chain's validity now, which is stricter),
// and revocation is only checked offline (CRLs in the trust store; no OCSP or CRL download).
// No I/O: the trust store and envelopes are read by the caller.
import type { X509Certificate } from 'node:crypto';
// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { NotaryEnvelopeError, parseNotaryEnvelope, type NotaryEnvelope } from './notary-envelope.ts';

export type CheckAction = 'enforce' | 'log' | 'skip';
export type VerificationLevel = 'strict' | 'permissive' | 'audit';
type Check = 'authenticity' | 'authenticTimestamp' | 'expiry' | 'revocation';

const LEVELS: Record<VerificationLevel, Record<Check, CheckAction>> = {
  strict: { authenticity: 'enforce', authenticTimestamp: 'enforce', expiry: 'enforce', revocation: 'enforce' },
  permissive: { authenticity: 'enforce', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  audit: { authenticity: 'log', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
};

/** A distinguished name as attribute → value (x509.subject identities and certificate subjects). */
export type DistinguishedName = ReadonlyMap<string, string>;

/** One trust policy of `verify.signature.notation`, with its trust store read. */
export interface NotaryTrustPolicy {
  name: string;
  /** Repositories (`registry/repository`) it applies to, or `*`. */
  registryScopes: readonly string[];
  /** Trust anchors by store type: `ca` for notary.x509, `signingAuthority` for notary.x509.signingAuthority. */
  trustStore: { ca: readonly X509Certificate[]; signingAuthority: readonly X509Certificate[] };
  /** CRLs (DER) from the trust store, for offline revocation checks. */
  crls: readonly Buffer[];
  /** `*`, or the subject attributes the signing certificate must carry. */
  trustedIdentities: readonly ('*' | DistinguishedName)[];
  level: VerificationLevel;
  override?: Partial<Record<Check, CheckAction>>;
}

/** A Notary signature as fetched from the registry: not trusted yet. */
export interface NotarySignatureBlob {
  mediaType: string;
  envelope: Buffer;
  /** Where it was found, for messages: "referrer sha256:…". */
  from: string;
}

export interface NotaryVerdict {
  verified: boolean;
  message: string;
  signer?: string;
}

export class TrustPolicyError extends Error {}

/** Parses `C=US, ST=WA, O=Acme` (RFC 4514), refusing repeated or multi-valued attributes as notation does. */
export function parseDistinguishedName(text: string): DistinguishedName {
  let json: x509.JsonName;
  try {
    json = new x509.Name(text).toJSON();
  } catch {
    throw new TrustPolicyError(`"${text}" is not a distinguished name`);
  }
  const out = new Map<string, string>();
  for (const rdn of json) {
    const entries = Object.entries(rdn);
    if (entries.length !== 1 || entries[0]![1].length !== 1)
      throw new TrustPolicyError(`"${text}": multi-valued attributes are not supported`);
    const [type, [value]] = entries[0]! as [string, [string]];
    if (out.has(type)) throw new TrustPolicyError(`"${text}" repeats ${type}`);
    out.set(type, value);
  }
  return out;
}

/** Throws when `der` is not a certificate revocation list (a trust store's CRL is checked once, when read). */
export function checkCrl(der: Buffer): void {
  try {
    new x509.X509Crl(der);
  } catch {
    throw new TrustPolicyError('a "X509 CRL" block is not a certificate revocation list');
  }
}

/** A trusted identity of a policy: `*` or `x509.subject: <DN>` naming at least C, ST and O. */
export function parseTrustedIdentity(text: string): '*' | DistinguishedName {
  if (text.trim() === '*') return '*';
  const m = /^x509\.subject:\s*(.+)$/.exec(text.trim());
  if (!m) throw new TrustPolicyError(`trusted identity "${text}" is neither "*" nor "x509.subject: …"`);
  const dn = parseDistinguishedName(m[1]!);
  for (const required of ['C', 'ST', 'O'])
    if (!dn.has(required)) throw new TrustPolicyError(`trusted identity "${text}" must name ${required}`);
  return dn;
}

function subjectOf(cert: X509Certificate): DistinguishedName {
  return parseDistinguishedName(new x509.X509Certificate(cert.raw).subject);
}

const isSubset = (identity: DistinguishedName, subject: DistinguishedName): boolean =>
  [...identity].every(([k, v]) => subject.get(k) === v);

/** The policies that apply to a repository: those naming it exactly, else the global ones. */
export function applicablePolicies(policies: readonly NotaryTrustPolicy[], repository: string): NotaryTrustPolicy[] {
  const exact = policies.filter((p) => p.registryScopes.includes(repository));
  return exact.length > 0 ? exact : policies.filter((p) => p.registryScopes.includes('*'));
}

// ---- the code-signing chain (integrity) ----

function extensionsOf(cert: X509Certificate) {
  const parsed = new x509.X509Certificate(cert.raw);
  const keyUsage = parsed.getExtension(x509.KeyUsagesExtension);
  const basic = parsed.getExtension(x509.BasicConstraintsExtension);
  return { keyUsage, basic };
}

const selfSigned = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);

function leafProblem(leaf: X509Certificate): string | undefined {
  const { keyUsage, basic } = extensionsOf(leaf);
  if (basic?.ca) return 'the signing certificate is a CA certificate';
  if (!keyUsage) return 'the signing certificate has no key usage extension';
  if (!keyUsage.critical) return "the signing certificate's key usage extension is not critical";
  if (!(keyUsage.usages & x509.KeyUsageFlags.digitalSignature))
    return 'the signing certificate may not make digital signatures';
  if (keyUsage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign))
    return 'the signing certificate may sign certificates';
  const forbidden = [
    '1.3.6.1.5.5.7.3.1',
    '1.3.6.1.5.5.7.3.2',
    '1.3.6.1.5.5.7.3.4',
    '1.3.6.1.5.5.7.3.8',
    '1.3.6.1.5.5.7.3.9',
  ];
  if ((leaf.keyUsage ?? []).some((eku) => forbidden.includes(eku)))
    return "the signing certificate's extended key usage is not for code signing";
  return undefined;
}

function caProblem(cert: X509Certificate, below: number): string | undefined {
  const { keyUsage, basic } = extensionsOf(cert);
  const who = subjectLine(cert);
  if (!basic?.ca) return `${who} is not a CA certificate`;
  if (basic.pathLength !== undefined && basic.pathLength < below) return `${who}'s path length is exceeded`;
  if (!keyUsage?.critical || !(keyUsage.usages & x509.KeyUsageFlags.keyCertSign))
    return `${who} may not sign certificates`;
  return undefined;
}

const subjectLine = (c: X509Certificate): string => c.subject.split('\n').join(', ');

/** Why the chain (leaf first, root last) is not a well-formed code-signing chain. */
export function chainProblem(chain: readonly X509Certificate[]): string | undefined {
  const leaf = chain[0]!;
  if (chain.length === 1) return selfSigned(leaf) ? leafProblem(leaf) : 'a single certificate must be self-signed';
  for (const [i, cert] of chain.entries()) {
    const last = i === chain.length - 1;
    if (last) {
      if (!selfSigned(cert)) return `the chain ends at ${subjectLine(cert)}, which is not a self-signed root`;
    } else {
      if (selfSigned(cert)) return `${subjectLine(cert)} is self-signed but not at the end of the chain`;
      const parent = chain[i + 1]!;
      if (!cert.checkIssued(parent) || !cert.verify(parent.publicKey))
        return `${subjectLine(cert)} is not issued by ${subjectLine(parent)}`;
    }
    const problem = i === 0 ? leafProblem(cert) : caProblem(cert, i - 1);
    if (problem) return problem;
  }
  return undefined;
}

// ---- the checks after integrity ----

function validityProblem(chain: readonly X509Certificate[], at: Date, when: string): string | undefined {
  for (const c of chain) {
    if (at < new Date(c.validFrom))
      return `${subjectLine(c)} is not valid until ${new Date(c.validFrom).toISOString()} (${when})`;
    if (at > new Date(c.validTo)) return `${subjectLine(c)} expired at ${new Date(c.validTo).toISOString()} (${when})`;
  }
  return undefined;
}

/** Revocation by the trust store's CRLs: a certificate listed by a CRL its issuer signed is revoked. */
async function revocationProblem(
  chain: readonly X509Certificate[],
  crls: readonly Buffer[],
  now: Date,
): Promise<string | undefined> {
  const parsed = crls.map((der) => new x509.X509Crl(der));
  for (const [i, cert] of chain.slice(0, -1).entries()) {
    const issuer = new x509.X509Certificate(chain[i + 1]!.raw);
    for (const crl of parsed) {
      if (crl.issuer !== issuer.subject) continue;
      if (!(await crl.verify({ publicKey: issuer }).catch(() => false))) continue;
      if (crl.nextUpdate && crl.nextUpdate < now)
        return `the CRL of ${issuer.subject} expired at ${crl.nextUpdate.toISOString()}: revocation unknown`;
      const serial = new x509.X509Certificate(cert.raw).serialNumber;
      const entry = crl.entries.find((e) => e.serialNumber === serial);
      if (entry) return `${subjectLine(cert)} was revoked at ${entry.revocationDate.toISOString()}`;
    }
  }
  return undefined;
}

interface Judged {
  problem?: string;
  logged: string[];
  signer?: string;
}

function payloadProblem(payload: Buffer, digest: string): string | undefined {
  let doc: { targetArtifact?: { digest?: unknown } };
  try {
    doc = JSON.parse(payload.toString('utf8')) as typeof doc;
  } catch {
    return 'the signed payload is not JSON';
  }
  const signed = doc?.targetArtifact?.digest;
  return signed === digest ? undefined : `the signature is for ${String(signed)}, not ${digest}`;
}

function authenticityProblem(env: NotaryEnvelope, policy: NotaryTrustPolicy): string | undefined {
  const store = env.signingScheme === 'notary.x509' ? policy.trustStore.ca : policy.trustStore.signingAuthority;
  const anchored = env.chain.some((c) => store.some((t) => t.raw.equals(c.raw)));
  if (!anchored)
    return `the chain of ${subjectLine(env.chain[0]!)} does not reach the ${env.signingScheme === 'notary.x509' ? 'ca' : 'signingAuthority'} trust store`;
  const subject = subjectOf(env.chain[0]!);
  const trusted = policy.trustedIdentities.some((id) => id === '*' || isSubset(id, subject));
  return trusted ? undefined : `${subjectLine(env.chain[0]!)} is not a trusted identity`;
}

function timestampProblem(env: NotaryEnvelope, now: Date): string | undefined {
  if (env.signingScheme === 'notary.x509.signingAuthority') {
    if (!env.authenticSigningTime) return 'the signature has no authentic signing time';
    return validityProblem(env.chain, env.authenticSigningTime, 'at its authentic signing time');
  }
  return validityProblem(env.chain, now, 'now');
}

/** One envelope judged against one policy, check by check. */
async function judge(env: NotaryEnvelope, digest: string, policy: NotaryTrustPolicy, now: Date): Promise<Judged> {
  if (!env.signatureValid) return { problem: 'the signature does not match the signed content', logged: [] };
  const chain = chainProblem(env.chain);
  if (chain) return { problem: chain, logged: [] };
  const claim = payloadProblem(env.payload, digest);
  if (claim) return { problem: claim, logged: [] };
  const actions = { ...LEVELS[policy.level], ...policy.override };
  const logged: string[] = [];
  const outcome = (check: Check, problem: string | undefined): string | undefined => {
    if (!problem || actions[check] === 'skip') return undefined;
    if (actions[check] === 'log') {
      logged.push(problem);
      return undefined;
    }
    return problem;
  };
  const problem =
    outcome('authenticity', authenticityProblem(env, policy)) ??
    outcome('authenticTimestamp', timestampProblem(env, now)) ??
    outcome(
      'expiry',
      env.expiry && env.expiry <= now ? `the signature expired at ${env.expiry.toISOString()}` : undefined,
    ) ??
    (actions.revocation === 'skip'
      ? undefined
      : outcome('revocation', await revocationProblem(env.chain, policy.crls, now)));
  return problem ? { problem, logged } : { logged, signer: subjectLine(env.chain[0]!) };
}

/**
 * Whether one of the Notary signatures of `digest` verifies under one of the policies that
 * apply to `repository`. The message says who signed (and what was only logged), or why each
 * signature was refused.
 */
export async function verifyNotarySignatures(
  digest: string,
  repository: string,
  blobs: readonly NotarySignatureBlob[],
  policies: readonly NotaryTrustPolicy[],
  now: Date,
): Promise<NotaryVerdict> {
  const applicable = applicablePolicies(policies, repository);
  if (applicable.length === 0) return { verified: false, message: `no Notary trust policy applies to ${repository}` };
  if (blobs.length === 0) return { verified: false, message: `no Notary signature found for ${digest}` };
  const problems: string[] = [];
  for (const blob of blobs) {
    let env: NotaryEnvelope;
    try {
      env = parseNotaryEnvelope(blob.mediaType, blob.envelope);
    } catch (err) {
      if (!(err instanceof NotaryEnvelopeError)) throw err;
      problems.push(`${blob.from}: ${err.message}`);
      continue;
    }
    for (const policy of applicable) {
      const result = await judge(env, digest, policy, now);
      if (result.problem) {
        problems.push(`${blob.from}: ${result.problem}`);
        continue;
      }
      const logged = result.logged.length > 0 ? ` (logged: ${result.logged.join('; ')})` : '';
      const signer = `${result.signer!} (Notary ${env.format.toUpperCase()}, trust policy ${policy.name})`;
      return { verified: true, message: `signed by ${signer}${logged}`, signer };
    }
  }
  const shown = [...new Set(problems)].slice(0, 3).join('; ');
  return { verified: false, message: `no valid Notary signature: ${shown}` };
}
