// Where the Sigstore trust root (Fulcio CAs, Rekor and CT log keys) comes from:
//   - a trusted_root.json file (air-gapped clusters, private Sigstore deployments), re-read
//     when the file changes, so a rotated ConfigMap takes effect without a restart;
//   - otherwise the Sigstore TUF repository (@sigstore/tuf: signed, versioned, expiring
//     metadata), refreshed daily, cached in a writable directory (the root filesystem is
//     read-only; /tmp is an emptyDir).
// Loaded on first use only: clusters that verify with keys and no transparency log never
// need it, and a TUF outage surfaces as a check error on the policies that need it.
// The Sigstore libraries themselves are imported on first use too (they cost memory).
import { readFileSync, statSync } from 'node:fs';
import type { TrustedRoot } from '@sigstore/protobuf-specs';

export interface TrustedRootSettings {
  /** A trusted_root.json (application/vnd.dev.sigstore.trustedroot+json). */
  file?: string;
  tuf?: { mirrorURL?: string; rootFile?: string; cachePath?: string };
}

export class TrustRootError extends Error {}

const TUF_REFRESH_MS = 24 * 3600_000;
const TUF_RETRY_MS = 60_000;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

async function parseTrustedRoot(text: string, where: string): Promise<TrustedRoot> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TrustRootError(`${where} is not JSON`);
  }
  const mediaType = (json as { mediaType?: unknown } | null)?.mediaType;
  if (typeof mediaType !== 'string' || !mediaType.startsWith('application/vnd.dev.sigstore.trustedroot')) {
    throw new TrustRootError(`${where} is not a Sigstore trusted root (mediaType ${String(mediaType)})`);
  }
  const { TrustedRoot } = await import('@sigstore/protobuf-specs');
  try {
    return TrustedRoot.fromJSON(json);
  } catch (err) {
    throw new TrustRootError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export class TrustedRootSource {
  private readonly settings: TrustedRootSettings;
  private readonly now: () => number;
  private file: { mtimeMs: number; root: TrustedRoot } | undefined;
  private tuf: { at: number; root: Promise<TrustedRoot> } | undefined;
  private tufFailure: { at: number; error: TrustRootError } | undefined;

  constructor(settings: TrustedRootSettings = {}, now: () => number = Date.now) {
    this.settings = settings;
    this.now = now;
  }

  describe(): string {
    return this.settings.file
      ? `trusted root file ${this.settings.file}`
      : `TUF repository ${this.settings.tuf?.mirrorURL ?? 'https://tuf-repo-cdn.sigstore.dev'}`;
  }

  async get(): Promise<TrustedRoot> {
    return this.settings.file ? this.fromFile(this.settings.file) : this.fromTuf();
  }

  private async fromFile(path: string): Promise<TrustedRoot> {
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      throw new TrustRootError(
        `cannot read the trusted root ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (this.file && this.file.mtimeMs === st.mtimeMs) return this.file.root;
    if (st.size > MAX_FILE_BYTES) throw new TrustRootError(`the trusted root ${path} is larger than 4 MiB`);
    const root = await parseTrustedRoot(readFileSync(path, 'utf8'), `the trusted root ${path}`);
    this.file = { mtimeMs: st.mtimeMs, root };
    return root;
  }

  private fromTuf(): Promise<TrustedRoot> {
    const now = this.now();
    if (this.tuf && now - this.tuf.at < TUF_REFRESH_MS) return this.tuf.root;
    if (!this.tuf && this.tufFailure && now - this.tufFailure.at < TUF_RETRY_MS) {
      return Promise.reject(this.tufFailure.error);
    }
    const previous = this.tuf;
    const tuf = this.settings.tuf ?? {};
    const loading = import('@sigstore/tuf')
      .then(({ getTrustedRoot }) =>
        getTrustedRoot({
          cachePath: tuf.cachePath ?? '/tmp/patchline-tuf',
          ...(tuf.mirrorURL ? { mirrorURL: tuf.mirrorURL } : {}),
          ...(tuf.rootFile ? { rootPath: tuf.rootFile } : {}),
          retry: 1,
          timeout: 10_000,
        }),
      )
      .catch(async (err: unknown) => {
        // Keep serving the last good root through a TUF outage; retry soon.
        this.tuf = previous ? { at: now - TUF_REFRESH_MS + TUF_RETRY_MS, root: previous.root } : undefined;
        if (previous) return previous.root;
        const error = new TrustRootError(
          `cannot load the Sigstore trust root from ${this.describe()}: ${err instanceof Error ? err.message : String(err)}`,
        );
        this.tufFailure = { at: now, error };
        throw error;
      });
    this.tuf = { at: now, root: loading };
    return loading;
  }
}
