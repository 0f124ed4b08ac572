// Quay (quay.io and Red Hat Quay, with Clair): the manifest's security report.
//   GET /api/v1/repository/{namespace}/{repository}/manifest/{digest}/security?vulnerabilities=true
// status "scanned" carries the features (packages) and their vulnerabilities; "queued" is a
// scan to wait for; "unsupported" and "failed" say Quay cannot judge it. Private repositories
// need an OAuth application token (Bearer); public ones are read anonymously.
import { jsonApi } from '../../runtime/http.ts';
import type { ImageReference } from '../../registry/reference.ts';
import { severityOf, type Finding } from '../vulnerabilities.ts';
import { finding, list, MAX_FINDINGS, record, str, type RegistryScanner, type ScanAnswer } from './types.ts';

export interface QuayOptions {
  /** The API's base URL; default https://<registry host>. */
  url?: string;
  /** An OAuth application token; none: anonymous (public repositories). */
  token?: () => Promise<string | undefined>;
}

/** Clair's severities, in Quay's words, as Patchline's. */
const SEVERITY: Record<string, string> = { Defcon1: 'CRITICAL', Negligible: 'LOW' };

/** What Quay's security report says. */
export function quayAnswer(body: unknown): ScanAnswer {
  const b = record(body);
  const status = str(b.status) ?? 'unknown';
  if (status === 'queued') return { state: 'pending', detail: 'Quay scan queued' };
  if (status !== 'scanned') return { state: 'unknown', detail: `Quay scan ${status}` };
  const features = list(record(record(b.data).Layer).Features).map(record);
  const findings = features.flatMap((f) =>
    list(f.Vulnerabilities)
      .map(record)
      .flatMap((v): Finding[] => {
        const id = str(v.Name);
        if (!id) return [];
        const severity = str(v.Severity) ?? '';
        return [
          finding(id, severityOf(SEVERITY[severity] ?? severity), {
            resource: str(f.Name),
            installedVersion: str(f.Version),
            fixedVersion: str(v.FixedBy),
          }),
        ];
      }),
  );
  return { state: 'scanned', findings: findings.slice(0, MAX_FINDINGS) };
}

export class QuayScanner implements RegistryScanner {
  readonly kind = 'quay';
  readonly name: string;
  private readonly options: QuayOptions;

  constructor(host: string, options: QuayOptions = {}) {
    this.options = options;
    this.name = `Quay ${host}`;
  }

  async scan(image: ImageReference, digest: string, signal?: AbortSignal): Promise<ScanAnswer> {
    const base = (this.options.url ?? `https://${image.registry}`).replace(/\/+$/, '');
    const path = image.repository.split('/').map(encodeURIComponent).join('/');
    const token = await this.options.token?.();
    const body = await jsonApi(
      `${base}/api/v1/repository/${path}/manifest/${digest}/security?vulnerabilities=true`,
      'Quay',
      {
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
        limit: 32 * 1024 * 1024,
        ...(signal ? { signal } : {}),
      },
    );
    return quayAnswer(body);
  }
}
