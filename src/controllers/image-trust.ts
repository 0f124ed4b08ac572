// The I/O half of signature and attestation checks, shared by every ImagePolicy (and the
// admission webhook): public keys from Secrets, cosign artefacts from the registry, the
// Sigstore trust root, and a cache of verdicts so that a digest is verified once per
// authority set, not once per policy and reconcile. Verdicts that fail are kept briefly (a
// signature is often pushed seconds after its image); verdicts that pass are kept longer
// and re-checked now and then (a signature can be deleted, a Secret's key rotated: the key
// material is part of the cache key, so a rotation takes effect at once). A requested
// reconcile (`fresh`) looks again at once.
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { RegistryClient } from '../registry/client.ts';
import { repositoryName, type ImageReference } from '../registry/reference.ts';
import { counter, type Registry } from '../runtime/metrics.ts';
import { PromiseCache } from './promise-cache.ts';
import { bundlesFor, legacyCosignLayers, referrerBundles, type ReferrerBundle } from '../verify/cosign-artifacts.ts';
import type { Descriptor } from '../registry/manifest.ts';
import { notarySignatureBlobs } from '../verify/notary-artifacts.ts';
import type { NotaryTrustPolicy } from '../verify/notary.ts';
import {
  anchoredRegExp,
  describeAuthority,
  isCosignAuthority,
  verifiedStatements,
  verifyImageSignature,
  type Authority,
  type CosignArtifact,
  type Matcher,
  type NotationAuthority,
  type SignatureVerdict,
  type VerifyOptions,
} from '../verify/signatures.ts';
import type { TrustedRootSource } from '../verify/trusted-root.ts';
import { findingsFromVulnAttestation, type Finding } from '../verify/vulnerabilities.ts';
import { KmsKeys } from '../verify/kms-keys.ts';

export type SignatureSpec = NonNullable<NonNullable<ImagePolicy['spec']['verify']>['signature']>;

/** Reads a Secret's decoded data (throws a clear error when it is missing or unreadable). */
export type SecretReader = (namespace: string, name: string, signal?: AbortSignal) => Promise<Record<string, string>>;

type NotationSpec = NonNullable<SignatureSpec['notation']>[number];

class TrustConfigError extends Error {}

// The Notary verifier and its X.509 library (verify/notary.ts) are imported on the first policy
// that names a Notary trust policy, as the Sigstore libraries are on the first cosign verification.

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/** The certificates and CRLs (DER) in PEM text. */
function pemBlocks(text: string): { certificates: Buffer[]; crls: Buffer[] } {
  const certificates: Buffer[] = [];
  const crls: Buffer[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const der = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
    if (m[1] === 'CERTIFICATE') certificates.push(der);
    else if (m[1] === 'X509 CRL') crls.push(der);
  }
  return { certificates, crls };
}

/** The referrers of a digest as listed, and the cosign bundles among them (read once for both purposes). */
interface ReferrerSet {
  descriptors: Descriptor[];
  bundles: ReferrerBundle[];
}

/** What to look up: an image by digest, read with `source`, judged against `authorities`. */
export interface Lookup {
  image: ImageReference;
  digest: string;
  source: CredentialSource;
  authorities: readonly Authority[];
  signal?: AbortSignal;
  /** Look again past a cached verdict (a requested reconcile). */
  fresh?: boolean;
}

export interface AttestedScan {
  findings: Finding[];
  scannedAt?: Date;
  scanner?: string;
}

const PASS_TTL_MS = 60 * 60_000;
const FAIL_TTL_MS = 30_000;
const MAX_ENTRIES = 5_000;

export interface ImageTrustDeps {
  client: RegistryClient;
  secrets: SecretReader;
  trustedRoot: TrustedRootSource;
  /** Reads a ConfigMap's data (Notary trust stores); without it, trust stores come from Secrets only. */
  configMaps?: SecretReader;
  /** Keys in cloud KMSs (verify.signature.keys[].kms); default: the operator's cloud identities. */
  kms?: Pick<KmsKeys, 'publicKey'>;
  registry?: Registry;
  now?: () => number;
}

export class ImageTrust {
  private readonly deps: ImageTrustDeps;
  private readonly verdicts: PromiseCache<SignatureVerdict>;
  private readonly scans: PromiseCache<AttestedScan | undefined>;
  /** The referrers of a digest, read once for both signatures and attestations. */
  private readonly referrers: PromiseCache<ReferrerSet>;
  private readonly verifications;
  private defaultKms: KmsKeys | undefined;

  constructor(deps: ImageTrustDeps) {
    this.deps = deps;
    const now = () => this.now();
    this.verdicts = new PromiseCache({ max: MAX_ENTRIES, now, ttlMs: (v) => (v.verified ? PASS_TTL_MS : FAIL_TTL_MS) });
    this.scans = new PromiseCache({ max: MAX_ENTRIES, now, ttlMs: (v) => (v ? PASS_TTL_MS : FAIL_TTL_MS) });
    this.referrers = new PromiseCache({ max: MAX_ENTRIES, now, ttlMs: () => FAIL_TTL_MS });
    this.verifications = deps.registry
      ? counter(deps.registry, {
          name: 'patchline_signature_verifications_total',
          help: 'Image signature verifications (cache misses), by result.',
          labelNames: ['result'] as const,
        })
      : undefined;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** The authorities a policy names, with their keys read from Secrets in its namespace or a cloud KMS. */
  async authorities(namespace: string, spec: SignatureSpec, signal?: AbortSignal): Promise<Authority[]> {
    const out: Authority[] = [];
    for (const [i, k] of (spec.keys ?? []).entries()) {
      if (k.kms) {
        out.push({
          kind: 'key',
          name: k.kms,
          publicKey: await this.kmsKey(i, k.kms, signal),
          ignoreTlog: k.ignoreTlog === true,
        });
        continue;
      }
      if (!k.secretRef) throw new TrustConfigError(`keys[${i}] names neither a secretRef nor a kms URI`);
      const name = k.secretRef.name;
      const field = k.secretRef.key ?? 'cosign.pub';
      const data = await this.deps.secrets(namespace, name, signal);
      const pem = data[field];
      if (!pem) throw new TrustConfigError(`the Secret ${namespace}/${name} has no key "${field}"`);
      try {
        out.push({
          kind: 'key',
          name: `${name}/${field}`,
          publicKey: createPublicKey(pem),
          ignoreTlog: k.ignoreTlog === true,
        });
      } catch {
        throw new TrustConfigError(`keys[${i}]: ${namespace}/${name} "${field}" is not a PEM public key`);
      }
    }
    for (const [i, n] of (spec.notation ?? []).entries())
      out.push({
        kind: 'notation',
        name: n.name ?? `notation[${i}]`,
        policy: await this.notaryPolicy(namespace, i, n, signal),
      });
    const matcher = (exact: string | undefined, pattern: string | undefined): Matcher =>
      exact !== undefined ? { exact } : { pattern: anchoredRegExp(pattern ?? '') };
    for (const [i, id] of (spec.keyless ?? []).entries()) {
      out.push({
        kind: 'keyless',
        name: `keyless[${i}]`,
        issuer: matcher(id.issuer, id.issuerRegExp),
        subject: matcher(id.subject, id.subjectRegExp),
      });
    }
    return out;
  }

  /** A Notary trust policy with its trust stores read from Secrets and ConfigMaps of the namespace. */
  private async notaryPolicy(
    namespace: string,
    i: number,
    spec: NotationSpec,
    signal?: AbortSignal,
  ): Promise<NotaryTrustPolicy> {
    const { checkCrl, parseTrustedIdentity, TrustPolicyError } = await import('../verify/notary.ts');
    const ca: X509Certificate[] = [];
    const signingAuthority: X509Certificate[] = [];
    const crls: Buffer[] = [];
    for (const [j, store] of spec.trustStores.entries()) {
      const where = `notation[${i}].trustStores[${j}]`;
      const ref = store.secretRef ?? store.configMapRef;
      if (!ref) throw new TrustConfigError(`${where} names neither a secretRef nor a configMapRef`);
      const kind = store.secretRef ? 'Secret' : 'ConfigMap';
      const reader = store.secretRef ? this.deps.secrets : this.deps.configMaps;
      if (!reader) throw new TrustConfigError(`${where}: trust stores in ConfigMaps are not enabled`);
      let data: Record<string, string>;
      try {
        data = await reader(namespace, ref.name, signal);
      } catch (err) {
        throw new TrustConfigError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (ref.key !== undefined && !(ref.key in data))
        throw new TrustConfigError(`${where}: the ${kind} ${namespace}/${ref.name} has no key "${ref.key}"`);
      const blocks = pemBlocks((ref.key !== undefined ? [data[ref.key]!] : Object.values(data)).join('\n'));
      const certificates = blocks.certificates.flatMap((der) => {
        try {
          return [new X509Certificate(der)];
        } catch {
          return [];
        }
      });
      if (certificates.length === 0)
        throw new TrustConfigError(`${where}: the ${kind} ${namespace}/${ref.name} holds no PEM certificate`);
      (store.type === 'signingAuthority' ? signingAuthority : ca).push(...certificates);
      for (const crl of blocks.crls) {
        try {
          checkCrl(crl);
        } catch (err) {
          throw new TrustConfigError(`${where}: the ${kind} ${namespace}/${ref.name}: ${(err as Error).message}`);
        }
        crls.push(crl);
      }
    }
    let trustedIdentities;
    try {
      trustedIdentities = spec.trustedIdentities.map(parseTrustedIdentity);
    } catch (err) {
      if (!(err instanceof TrustPolicyError)) throw err;
      throw new TrustConfigError(`notation[${i}]: ${err.message}`);
    }
    return {
      name: spec.name ?? `notation[${i}]`,
      registryScopes: spec.registryScopes ?? ['*'],
      trustStore: { ca, signingAuthority },
      crls,
      trustedIdentities,
      level: spec.level ?? 'strict',
      ...(spec.override ? { override: spec.override } : {}),
    };
  }

  private async kmsKey(i: number, uri: string, signal?: AbortSignal): Promise<KeyObject> {
    try {
      return await (this.deps.kms ?? (this.defaultKms ??= new KmsKeys())).publicKey(uri, signal);
    } catch (err) {
      throw new TrustConfigError(`keys[${i}]: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private fingerprint(authorities: readonly Authority[]): string {
    const h = createHash('sha256');
    for (const a of authorities) {
      if (a.kind === 'key')
        h.update(
          `key|${a.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}|${String(a.ignoreTlog)}\n`,
        );
      else if (a.kind === 'keyless') h.update(`keyless|${describeAuthority(a)}\n`);
      else {
        const p = a.policy;
        h.update(`notation|${a.name}|${p.registryScopes.join(',')}|${p.level}|${JSON.stringify(p.override ?? {})}|`);
        for (const id of p.trustedIdentities) h.update(id === '*' ? '*|' : `${JSON.stringify([...id])}|`);
        for (const c of [...p.trustStore.ca, ...p.trustStore.signingAuthority]) h.update(c.fingerprint256);
        for (const crl of p.crls) h.update(crl);
        h.update('\n');
      }
    }
    return h.digest('hex').slice(0, 16);
  }

  /**
   * What cosign stored about the digest for `purpose` (the legacy tag, read only when a cosign
   * authority is asked, and the referrer bundles shared with the other purpose), with the
   * referrers as listed, and the verdict on it, through `cache`: one registry read and
   * verification per digest, source and authority set.
   */
  private judged<V>(
    cache: PromiseCache<V>,
    l: Lookup,
    purpose: 'sig' | 'att',
    judge: (artifacts: CosignArtifact[], options: VerifyOptions, referrers: Descriptor[]) => Promise<V>,
  ): Promise<V> {
    const image = `${repositoryName(l.image)}@${l.digest}|${l.source.id}`;
    const load = async (): Promise<V> => {
      const cosign = l.authorities.some(isCosignAuthority);
      const [legacy, referrers] = await Promise.all([
        cosign ? legacyCosignLayers(this.deps.client, l.image, l.digest, purpose, l.source, l.signal) : [],
        this.referrers.get(image, () => this.referrerSet(l), l.fresh),
      ]);
      return judge(
        [...legacy, ...bundlesFor(referrers.bundles, purpose)],
        { trustedRoot: () => this.deps.trustedRoot.get() },
        referrers.descriptors,
      );
    };
    return cache.get(`${image}|${this.fingerprint(l.authorities)}`, load, l.fresh);
  }

  private async referrerSet(l: Lookup): Promise<ReferrerSet> {
    const { client } = this.deps;
    const options = l.signal ? { signal: l.signal } : {};
    const { descriptors } = await client.referrers(l.image.registry, l.image.repository, l.digest, l.source, options);
    return { descriptors, bundles: await referrerBundles(client, l.image, descriptors, l.source, l.signal) };
  }

  /**
   * Whether the image at `digest` is signed by one of the authorities: a cosign signature, or a
   * Notary Project signature that a trust policy accepts.
   */
  signature(l: Lookup): Promise<SignatureVerdict> {
    const cosign = l.authorities.filter(isCosignAuthority);
    const notation = l.authorities.filter((a): a is NotationAuthority => a.kind === 'notation');
    return this.judged(this.verdicts, l, 'sig', async (artifacts, options, referrers) => {
      const verdicts: SignatureVerdict[] = [];
      if (cosign.length > 0 || notation.length === 0)
        verdicts.push(await verifyImageSignature(l.digest, artifacts, cosign, options));
      if (notation.length > 0 && !verdicts.some((v) => v.verified))
        verdicts.push(await this.notarySignature(l, referrers, notation));
      const verdict: SignatureVerdict = verdicts.find((v) => v.verified) ?? {
        verified: false,
        message: verdicts.map((v) => v.message).join('; '),
      };
      this.verifications?.inc({ result: verdict.verified ? 'verified' : 'refused' });
      return verdict;
    });
  }

  private async notarySignature(
    l: Lookup,
    referrers: readonly Descriptor[],
    notation: readonly NotationAuthority[],
  ): Promise<SignatureVerdict> {
    const blobs = await notarySignatureBlobs(this.deps.client, l.image, referrers, l.source, l.signal);
    const { verifyNotarySignatures } = await import('../verify/notary.ts');
    const policies = notation.map((a) => a.policy);
    return verifyNotarySignatures(l.digest, repositoryName(l.image), blobs, policies, new Date(this.now()));
  }

  /**
   * The findings of the newest vulnerability attestation about `digest` that one of the
   * authorities signed; undefined when there is none.
   */
  attestedScan(l: Lookup): Promise<AttestedScan | undefined> {
    const digest = l.digest;
    const cosign = l.authorities.filter(isCosignAuthority);
    if (cosign.length === 0) return Promise.resolve(undefined); // attestations are cosign's
    return this.judged(this.scans, l, 'att', async (artifacts, options) => {
      const { statements } = await verifiedStatements(digest, artifacts, cosign, options);
      let newest: AttestedScan | undefined;
      for (const statement of statements) {
        let scan: AttestedScan;
        try {
          scan = findingsFromVulnAttestation(statement, digest);
        } catch {
          continue; // another predicate (SBOM, provenance), or a malformed one
        }
        if (!newest || (scan.scannedAt?.getTime() ?? 0) > (newest.scannedAt?.getTime() ?? 0)) newest = scan;
      }
      return newest;
    });
  }
}
