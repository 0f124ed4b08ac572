// The I/O half of signature and attestation checks, shared by every ImagePolicy (and the
// admission webhook): public keys from Secrets, cosign artefacts from the registry, the
// Sigstore trust root, and a cache of verdicts so that a digest is verified once per
// authority set, not once per policy and reconcile. Verdicts that fail are kept briefly (a
// signature is often pushed seconds after its image); verdicts that pass are kept longer
// and re-checked now and then (a signature can be deleted, a Secret's key rotated: the key
// material is part of the cache key, so a rotation takes effect at once). A requested
// reconcile (`fresh`) looks again at once.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { RegistryClient } from '../registry/client.ts';
import { repositoryName, type ImageReference } from '../registry/reference.ts';
import { counter, type Registry } from '../runtime/metrics.ts';
import { PromiseCache } from './promise-cache.ts';
import { bundlesFor, legacyCosignLayers, referrerBundles, type ReferrerBundle } from '../verify/cosign-artifacts.ts';
import {
  anchoredRegExp,
  describeAuthority,
  verifiedStatements,
  verifyImageSignature,
  type Authority,
  type CosignArtifact,
  type Matcher,
  type SignatureVerdict,
  type VerifyOptions,
} from '../verify/signatures.ts';
import type { TrustedRootSource } from '../verify/trusted-root.ts';
import { findingsFromVulnAttestation, type Finding } from '../verify/vulnerabilities.ts';
import { KmsKeys } from '../verify/kms-keys.ts';

export type SignatureSpec = NonNullable<NonNullable<ImagePolicy['spec']['verify']>['signature']>;

/** Reads a Secret's decoded data (throws a clear error when it is missing or unreadable). */
export type SecretReader = (namespace: string, name: string, signal?: AbortSignal) => Promise<Record<string, string>>;

class TrustConfigError extends Error {}

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
  private readonly referrers: PromiseCache<ReferrerBundle[]>;
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
      else h.update(`keyless|${describeAuthority(a)}\n`);
    }
    return h.digest('hex').slice(0, 16);
  }

  /**
   * What cosign stored about the digest for `purpose` (the legacy tag, and the referrer
   * bundles shared with the other purpose) and the verdict on it, through `cache`: one registry
   * read and verification per digest, source and authority set.
   */
  private judged<V>(
    cache: PromiseCache<V>,
    l: Lookup,
    purpose: 'sig' | 'att',
    judge: (artifacts: CosignArtifact[], options: VerifyOptions) => Promise<V>,
  ): Promise<V> {
    const image = `${repositoryName(l.image)}@${l.digest}|${l.source.id}`;
    const load = async (): Promise<V> => {
      const [legacy, bundles] = await Promise.all([
        legacyCosignLayers(this.deps.client, l.image, l.digest, purpose, l.source, l.signal),
        this.referrers.get(
          image,
          () => referrerBundles(this.deps.client, l.image, l.digest, l.source, l.signal),
          l.fresh,
        ),
      ]);
      return judge([...legacy, ...bundlesFor(bundles, purpose)], {
        trustedRoot: () => this.deps.trustedRoot.get(),
      });
    };
    return cache.get(`${image}|${this.fingerprint(l.authorities)}`, load, l.fresh);
  }

  /** Whether the image at `digest` is signed by one of the authorities. */
  signature(l: Lookup): Promise<SignatureVerdict> {
    return this.judged(this.verdicts, l, 'sig', async (artifacts, options) => {
      const verdict = await verifyImageSignature(l.digest, artifacts, l.authorities, options);
      this.verifications?.inc({ result: verdict.verified ? 'verified' : 'refused' });
      return verdict;
    });
  }

  /**
   * The findings of the newest vulnerability attestation about `digest` that one of the
   * authorities signed; undefined when there is none.
   */
  attestedScan(l: Lookup): Promise<AttestedScan | undefined> {
    const digest = l.digest;
    return this.judged(this.scans, l, 'att', async (artifacts, options) => {
      const { statements } = await verifiedStatements(digest, artifacts, l.authorities, options);
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
