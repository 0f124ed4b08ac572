// Google Artifact Analysis (Container Analysis API v1) for Artifact Registry and Container
// Registry images, with the operator's Google identity (GKE workload identity, application
// default credentials). The DISCOVERY occurrence of the image says whether the scan has
// finished; its VULNERABILITY occurrences are the findings.
//   GET https://containeranalysis.googleapis.com/v1/projects/{project}/occurrences?filter=…
import { jsonApi } from '../../runtime/http.ts';
import type { ImageReference } from '../../registry/reference.ts';
import { severityOf, type Finding } from '../vulnerabilities.ts';
import {
  finding,
  list,
  MAX_FINDINGS,
  record,
  str,
  ScannerError,
  type RegistryScanner,
  type ScanAnswer,
} from './types.ts';

const API = 'https://containeranalysis.googleapis.com/v1';
const PENDING = new Set(['PENDING', 'SCANNING']);
const SCANNED = new Set(['FINISHED_SUCCESS', 'COMPLETE']);
const GOOGLE_HOST = /^(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)$/;
const MAX_PAGES = 20;

export interface ArtifactAnalysisOptions {
  /** A Google access token; default: google-auth-library's application default credentials. */
  token?: () => Promise<string>;
}

/** The finding of one VULNERABILITY occurrence (one per affected package). */
export function occurrenceFindings(occurrence: unknown): Finding[] {
  const o = record(occurrence);
  const v = record(o.vulnerability);
  const id = str(v.shortDescription) ?? str(o.noteName)?.split('/').pop();
  if (!id) return [];
  const severity = severityOf(v.effectiveSeverity ?? v.severity);
  const issues = list(v.packageIssue).map(record);
  if (issues.length === 0) return [finding(id, severity)];
  return issues.map((i) => {
    const resource = str(i.affectedPackage);
    const installedVersion = str(record(i.affectedVersion).fullName);
    const fixed = record(i.fixedVersion);
    const fixedVersion = fixed.kind === 'MAXIMUM' || i.fixAvailable === false ? undefined : str(fixed.fullName);
    return finding(id, severity, { resource, installedVersion, fixedVersion });
  });
}

async function defaultToken(): Promise<string> {
  const { GoogleAuth } = await import('google-auth-library');
  const token = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getAccessToken();
  if (!token) throw new ScannerError('no Google access token for Artifact Analysis');
  return token;
}

export class ArtifactAnalysisScanner implements RegistryScanner {
  readonly kind = 'artifactAnalysis';
  readonly name = 'Artifact Analysis';
  private readonly options: ArtifactAnalysisOptions;

  constructor(options: ArtifactAnalysisOptions = {}) {
    this.options = options;
  }

  private async occurrences(project: string, filter: string, token: string, signal?: AbortSignal): Promise<unknown[]> {
    const out: unknown[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ filter, pageSize: '1000', ...(pageToken ? { pageToken } : {}) });
      const body = record(
        await jsonApi(
          `${API}/projects/${encodeURIComponent(project)}/occurrences?${query.toString()}`,
          'Artifact Analysis',
          {
            headers: { authorization: `Bearer ${token}` },
            limit: 32 * 1024 * 1024,
            ...(signal ? { signal } : {}),
          },
        ),
      );
      out.push(...list(body.occurrences));
      pageToken = str(body.nextPageToken);
      if (!pageToken || out.length >= MAX_FINDINGS) break;
    }
    return out;
  }

  async scan(image: ImageReference, digest: string, signal?: AbortSignal): Promise<ScanAnswer> {
    if (!GOOGLE_HOST.test(image.registry))
      throw new ScannerError(`${image.registry} is not an Artifact Registry or Container Registry host`);
    const project = image.repository.split('/')[0] ?? '';
    const resourceUrl = `https://${image.registry}/${image.repository}@${digest}`;
    const token = await (this.options.token ?? defaultToken)();
    const discovery = await this.occurrences(
      project,
      `kind="DISCOVERY" AND resourceUrl="${resourceUrl}"`,
      token,
      signal,
    );
    const found = record(record(discovery[0]).discovery);
    const status = str(found.analysisStatus);
    if (!status) return { state: 'unknown', detail: 'Artifact Analysis has no discovery occurrence for it' };
    if (PENDING.has(status)) return { state: 'pending', detail: `Artifact Analysis ${status}` };
    if (!SCANNED.has(status)) return { state: 'unknown', detail: `Artifact Analysis ${status}` };
    const vulns = await this.occurrences(
      project,
      `kind="VULNERABILITY" AND resourceUrl="${resourceUrl}"`,
      token,
      signal,
    );
    const completed = str(found.lastScanTime) ?? str(record(found.analysisCompleted).time);
    return {
      state: 'scanned',
      findings: vulns.flatMap(occurrenceFindings).slice(0, MAX_FINDINGS),
      ...(completed && !Number.isNaN(Date.parse(completed)) ? { scannedAt: new Date(completed) } : {}),
    };
  }
}
