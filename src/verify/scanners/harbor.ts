// Harbor (goharbor.io, API v2.0): the artifact's scan overview says whether the project's
// scanner (Trivy by default) has finished; the vulnerability addition lists the findings.
//   GET /api/v2.0/projects/{project}/repositories/{repository}/artifacts/{digest}?with_scan_overview=true
//   GET …/artifacts/{digest}/additions/vulnerabilities
// The repository name inside the project is URL-encoded twice (Harbor's rule for names with
// slashes). Both reports Harbor's scanners write are read (the 1.1 security report, and the
// older scanner-adapter report), asked for with X-Accept-Vulnerabilities.
import { jsonApi } from '../../runtime/http.ts';
import type { ImageReference } from '../../registry/reference.ts';
import { severityOf, type Finding } from '../vulnerabilities.ts';
import { finding, list, MAX_FINDINGS, record, str, type RegistryScanner, type ScanAnswer } from './types.ts';

const REPORT_TYPES = [
  'application/vnd.security.vulnerability.report; version=1.1',
  'application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0',
];
const PENDING = new Set(['Pending', 'Running', 'Scheduled']);

export interface HarborOptions {
  /** The API's base URL; default https://<registry host>. */
  url?: string;
  /** Basic credentials (a robot account); none: anonymous (public projects). */
  credential?: () => Promise<{ username: string; password: string } | undefined>;
}

/** The report of the first known type in a body keyed by report type. */
function byReportType(body: unknown): Record<string, unknown> | undefined {
  const keyed = record(body);
  for (const type of REPORT_TYPES) if (keyed[type]) return record(keyed[type]);
  return undefined;
}

/** Reads the scan overview of an artifact: finished, pending, or never scanned. */
export function harborOverview(artifact: unknown): ScanAnswer | { state: 'finished'; endTime?: Date } {
  const overview = byReportType(record(artifact).scan_overview);
  if (!overview) return { state: 'unknown', detail: 'Harbor has not scanned it' };
  const status = str(overview.scan_status) ?? 'unknown';
  if (PENDING.has(status)) return { state: 'pending', detail: `Harbor scan ${status}` };
  if (status !== 'Success') return { state: 'unknown', detail: `Harbor scan ${status}` };
  const end = str(overview.end_time);
  return { state: 'finished', ...(end && !Number.isNaN(Date.parse(end)) ? { endTime: new Date(end) } : {}) };
}

/** The findings of Harbor's vulnerability addition. */
export function harborFindings(additions: unknown): Finding[] {
  const report = byReportType(additions);
  return list(report?.vulnerabilities)
    .slice(0, MAX_FINDINGS)
    .flatMap((v): Finding[] => {
      const r = record(v);
      const id = str(r.id);
      if (!id) return [];
      return [
        finding(id, severityOf(r.severity), {
          resource: str(r.package),
          installedVersion: str(r.version),
          fixedVersion: str(r.fix_version),
        }),
      ];
    });
}

export class HarborScanner implements RegistryScanner {
  readonly kind = 'harbor';
  readonly name: string;
  private readonly options: HarborOptions;

  constructor(host: string, options: HarborOptions = {}) {
    this.options = options;
    this.name = `Harbor ${host}`;
  }

  async scan(image: ImageReference, digest: string, signal?: AbortSignal): Promise<ScanAnswer> {
    const [project, ...rest] = image.repository.split('/');
    const repository = encodeURIComponent(encodeURIComponent(rest.join('/')));
    const base = (this.options.url ?? `https://${image.registry}`).replace(/\/+$/, '');
    const artifact = `${base}/api/v2.0/projects/${encodeURIComponent(project ?? '')}/repositories/${repository}/artifacts/${digest}`;
    const credential = await this.options.credential?.();
    const headers: Record<string, string> = { 'x-accept-vulnerabilities': REPORT_TYPES.join(', ') };
    if (credential)
      headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    const call = (url: string, limit: number) =>
      jsonApi(url, 'Harbor', { headers, limit, ...(signal ? { signal } : {}) });
    const overview = harborOverview(await call(`${artifact}?with_scan_overview=true`, 256 * 1024));
    if (overview.state !== 'finished') return overview;
    const findings = harborFindings(await call(`${artifact}/additions/vulnerabilities`, 32 * 1024 * 1024));
    return { state: 'scanned', findings, ...(overview.endTime ? { scannedAt: overview.endTime } : {}) };
  }
}
