// Amazon ECR image scanning (basic and enhanced/Inspector), through the AWS SDK's
// DescribeImageScanFindings with the operator's own AWS identity (IRSA, EKS Pod Identity, the
// SDK chain), as registry auth uses. Basic findings carry package attributes; enhanced findings
// carry the vulnerable packages and their fixed versions.
import type { ImageReference } from '../../registry/reference.ts';
import { ECR_HOST } from '../../registry/auth/cloud.ts';
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

const PENDING = new Set(['IN_PROGRESS', 'PENDING']);
const SCANNED = new Set(['COMPLETE', 'ACTIVE']);
const MAX_PAGES = 20;

/** One page of DescribeImageScanFindings, as the SDK returns it (only what is read). */
export interface EcrScanPage {
  imageScanStatus?: { status?: string; description?: string };
  imageScanFindings?: { imageScanCompletedAt?: Date; findings?: unknown[]; enhancedFindings?: unknown[] };
  nextToken?: string;
}

export type EcrPageFetcher = (
  region: string,
  input: { registryId: string; repositoryName: string; imageId: { imageDigest: string }; nextToken?: string },
  signal?: AbortSignal,
) => Promise<EcrScanPage>;

function basicFinding(f: unknown): Finding[] {
  const r = record(f);
  const id = str(r.name);
  if (!id) return [];
  const attr = (key: string) =>
    str(
      list(r.attributes)
        .map(record)
        .find((a) => a.key === key)?.value,
    );
  return [
    finding(id, severityOf(r.severity), {
      resource: attr('package_name'),
      installedVersion: attr('package_version'),
    }),
  ];
}

function enhancedFinding(f: unknown): Finding[] {
  const r = record(f);
  const details = record(r.packageVulnerabilityDetails);
  const id = str(details.vulnerabilityId) ?? str(r.title);
  if (!id) return [];
  const packages = list(details.vulnerablePackages).map(record);
  const severity = severityOf(r.severity === 'UNTRIAGED' ? undefined : r.severity);
  if (packages.length === 0) return [finding(id, severity)];
  return packages.map((p) => {
    const fixedVersion = str(p.fixedInVersion);
    return finding(id, severity, {
      resource: str(p.name),
      installedVersion: str(p.version),
      fixedVersion: fixedVersion === 'NotAvailable' ? undefined : fixedVersion,
    });
  });
}

/** The findings of the pages of one scan. */
export function ecrFindings(pages: readonly EcrScanPage[]): Finding[] {
  return pages
    .flatMap((p) => [
      ...(p.imageScanFindings?.findings ?? []).flatMap(basicFinding),
      ...(p.imageScanFindings?.enhancedFindings ?? []).flatMap(enhancedFinding),
    ])
    .slice(0, MAX_FINDINGS);
}

async function sdkPage(
  region: string,
  input: Parameters<EcrPageFetcher>[1],
  signal?: AbortSignal,
): Promise<EcrScanPage> {
  const { ECRClient, DescribeImageScanFindingsCommand } = await import('@aws-sdk/client-ecr');
  const client = new ECRClient({ region });
  try {
    return await client.send(
      new DescribeImageScanFindingsCommand({ ...input, maxResults: 1000 }),
      signal ? { abortSignal: signal } : {},
    );
  } finally {
    client.destroy();
  }
}

export class EcrScanner implements RegistryScanner {
  readonly kind = 'ecr';
  readonly name = 'Amazon ECR';
  private readonly fetchPage: EcrPageFetcher;

  constructor(fetchPage: EcrPageFetcher = sdkPage) {
    this.fetchPage = fetchPage;
  }

  async scan(image: ImageReference, digest: string, signal?: AbortSignal): Promise<ScanAnswer> {
    const host = ECR_HOST.exec(image.registry);
    if (!host) throw new ScannerError(`${image.registry} is not an Amazon ECR registry`);
    const input = { registryId: host[1]!, repositoryName: image.repository, imageId: { imageDigest: digest } };
    const pages: EcrScanPage[] = [];
    try {
      let nextToken: string | undefined;
      do {
        const page = await this.fetchPage(host[2]!, { ...input, ...(nextToken ? { nextToken } : {}) }, signal);
        const status = page.imageScanStatus?.status ?? 'unknown';
        if (PENDING.has(status)) return { state: 'pending', detail: `ECR scan ${status}` };
        if (!SCANNED.has(status))
          return {
            state: 'unknown',
            detail: `ECR scan ${status}${page.imageScanStatus?.description ? `: ${page.imageScanStatus.description}` : ''}`,
          };
        pages.push(page);
        nextToken = page.nextToken;
      } while (nextToken && pages.length < MAX_PAGES);
    } catch (err) {
      const name = err instanceof Error ? err.name : '';
      if (name === 'ScanNotFoundException' || name === 'ImageNotFoundException')
        return { state: 'unknown', detail: `ECR: ${name}` };
      throw new ScannerError(
        `ECR DescribeImageScanFindings: ${name || 'Error'}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const completed = pages[0]?.imageScanFindings?.imageScanCompletedAt;
    return { state: 'scanned', findings: ecrFindings(pages), ...(completed ? { scannedAt: new Date(completed) } : {}) };
  }
}
