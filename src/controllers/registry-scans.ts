// The I/O half of registry scanners (verify.vulnerabilities.scanners): builds each scanner a
// policy names with its credentials (a Secret of the policy's namespace, the registry
// credentials it pulls with, or the operator's cloud identity), asks them in order, and caches
// their answers: a finished scan for an hour, a pending or unknown one for 30 seconds (a scan
// in progress is looked at again soon). A requested reconcile looks again at once.
import type { CredentialSource } from '../registry/auth/credentials.ts';
import type { ImageReference } from '../registry/reference.ts';
import { repositoryName } from '../registry/reference.ts';
import { ApiError } from '../runtime/http.ts';
import { PromiseCache } from './promise-cache.ts';
import type { SecretReader } from './image-trust.ts';
import { ArtifactAnalysisScanner } from '../verify/scanners/artifact-analysis.ts';
import { DefenderScanner } from '../verify/scanners/defender.ts';
import { EcrScanner } from '../verify/scanners/ecr.ts';
import { HarborScanner } from '../verify/scanners/harbor.ts';
import { QuayScanner } from '../verify/scanners/quay.ts';
import type { RegistryScanner, ScanAnswer } from '../verify/scanners/types.ts';
import type { Finding, VulnerabilitySpec } from '../verify/vulnerabilities.ts';

export type ScannerSpec = NonNullable<VulnerabilitySpec['scanners']>[number];

export interface ScannerLookup {
  namespace: string;
  image: ImageReference;
  digest: string;
  /** The credentials the policy pulls with (Harbor's default). */
  source: CredentialSource;
  specs: readonly ScannerSpec[];
  signal?: AbortSignal;
  fresh?: boolean;
}

/** What the scanners say, together: the first finished scan, else the first still scanning, else why none could judge. */
export type ScannersVerdict =
  | { state: 'scanned'; source: string; findings: Finding[]; scannedAt?: Date }
  | { state: 'pending'; source: string; detail: string }
  | { state: 'none'; notes: string[] };

export interface RegistryScansDeps {
  secrets: SecretReader;
  /** Builds a scanner (tests give ones with fake cloud identities); default: the real ones. */
  scannerFor?: (spec: ScannerSpec, credentials: ScannerCredentials) => RegistryScanner;
  now?: () => number;
}

/** What a scanner may need to authenticate, read only when it asks. */
export interface ScannerCredentials {
  registry: string;
  basic: () => Promise<{ username: string; password: string } | undefined>;
  token: () => Promise<string | undefined>;
}

const SCANNED_TTL_MS = 60 * 60_000;
const RETRY_TTL_MS = 30_000;

function defaultScanner(spec: ScannerSpec, credentials: ScannerCredentials): RegistryScanner {
  const url = spec.url ? { url: spec.url } : {};
  switch (spec.type) {
    case 'harbor':
      return new HarborScanner(credentials.registry, { ...url, credential: credentials.basic });
    case 'quay':
      return new QuayScanner(credentials.registry, { ...url, token: credentials.token });
    case 'ecr':
      return new EcrScanner();
    case 'artifactAnalysis':
      return new ArtifactAnalysisScanner();
    case 'defender':
      return new DefenderScanner(spec.subscriptions ? { subscriptions: spec.subscriptions } : {});
  }
}

export class RegistryScans {
  private readonly deps: RegistryScansDeps;
  private readonly answers: PromiseCache<ScanAnswer>;

  constructor(deps: RegistryScansDeps) {
    this.deps = deps;
    this.answers = new PromiseCache({
      max: 5_000,
      ...(deps.now ? { now: deps.now } : {}),
      ttlMs: (a) => (a.state === 'scanned' ? SCANNED_TTL_MS : RETRY_TTL_MS),
    });
  }

  private credentials(l: ScannerLookup, spec: ScannerSpec): ScannerCredentials {
    const secret = async () =>
      spec.secretRef ? this.deps.secrets(l.namespace, spec.secretRef.name, l.signal) : undefined;
    return {
      registry: l.image.registry,
      basic: async () => {
        const data = await secret();
        if (data) {
          if (!data.username || !data.password)
            throw new Error(`the Secret ${l.namespace}/${spec.secretRef?.name ?? ''} has no "username" and "password"`);
          return { username: data.username, password: data.password };
        }
        const credential = await l.source.credentialFor(l.image.registry, l.signal);
        return credential.kind === 'basic'
          ? { username: credential.username, password: credential.password }
          : undefined;
      },
      token: async () => {
        const data = await secret();
        if (data && !data.token)
          throw new Error(`the Secret ${l.namespace}/${spec.secretRef?.name ?? ''} has no "token"`);
        return data?.token;
      },
    };
  }

  /** Asks the policy's scanners about a digest, in order. */
  async judge(l: ScannerLookup): Promise<ScannersVerdict> {
    const notes: string[] = [];
    let pending: Extract<ScannersVerdict, { state: 'pending' }> | undefined;
    for (const spec of l.specs) {
      const scanner = (this.deps.scannerFor ?? defaultScanner)(spec, this.credentials(l, spec));
      // Credentials differ per Secret and per pull source: answers are not shared across them.
      const key = `${spec.type}|${spec.url ?? ''}|${spec.secretRef ? `${l.namespace}/${spec.secretRef.name}` : l.source.id}|${repositoryName(l.image)}@${l.digest}`;
      let answer: ScanAnswer;
      try {
        answer = await this.answers.get(key, () => scanner.scan(l.image, l.digest, l.signal), l.fresh);
      } catch (err) {
        notes.push(
          err instanceof ApiError && err.status === 404
            ? `${scanner.name}: not found`
            : `${scanner.name}: ${err instanceof Error ? err.message : String(err)}`,
        );
        continue;
      }
      if (answer.state === 'scanned')
        return {
          state: 'scanned',
          source: `${scanner.name} scan`,
          findings: answer.findings,
          ...(answer.scannedAt ? { scannedAt: answer.scannedAt } : {}),
        };
      if (answer.state === 'pending') pending ??= { state: 'pending', source: scanner.name, detail: answer.detail };
      else notes.push(`${scanner.name}: ${answer.detail}`);
    }
    return pending ?? { state: 'none', notes };
  }
}
