// Registry scanners: what a registry's own vulnerability scanning says about a digest, through
// each product's documented API, so that a candidate can be judged before anything runs it
// (Trivy Operator only scans what runs). Each source answers in one shape; the vulnerability
// gate (../vulnerabilities.ts) and its allow-list judge every source the same way.
import type { ImageReference } from '../../registry/reference.ts';
import type { Finding, Severity } from '../vulnerabilities.ts';

export type ScannerKind = 'harbor' | 'ecr' | 'artifactAnalysis' | 'defender' | 'quay';

/** What a scanner knows about a digest. */
export type ScanAnswer =
  /** Scanned: the findings (possibly none), and when the scan finished when the scanner says. */
  | { state: 'scanned'; findings: Finding[]; scannedAt?: Date }
  /** A scan is queued or running: wait for it. */
  | { state: 'pending'; detail: string }
  /** The scanner knows nothing of this digest, or cannot scan it (unsupported, failed): look elsewhere. */
  | { state: 'unknown'; detail: string };

export interface RegistryScanner {
  readonly kind: ScannerKind;
  /** For messages: "Harbor harbor.example.com". */
  readonly name: string;
  scan(image: ImageReference, digest: string, signal?: AbortSignal): Promise<ScanAnswer>;
}

/** A scanner's answer that could not be read (HTTP error, malformed body, no credentials). */
export class ScannerError extends Error {}

/** Findings are bounded per source: a registry can hold anything. */
export const MAX_FINDINGS = 20_000;

/** The value of a field that must be a string, else undefined. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** A list, or nothing (a scanner that sends something else is read as sending none). */
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export const record = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** A finding with the package fields a scanner gave (empty ones left out). */
export function finding(
  id: string,
  severity: Severity,
  pkg: { resource?: string | undefined; installedVersion?: string | undefined; fixedVersion?: string | undefined } = {},
): Finding {
  return {
    id,
    severity,
    ...(pkg.resource ? { resource: pkg.resource } : {}),
    ...(pkg.installedVersion ? { installedVersion: pkg.installedVersion } : {}),
    ...(pkg.fixedVersion ? { fixedVersion: pkg.fixedVersion } : {}),
  };
}
