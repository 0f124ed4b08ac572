import assert from 'node:assert/strict';
import {
  MAX_FINDINGS,
  findingsFromTrivyReport,
  findingsFromVulnAttestation,
  gateVulnerabilities,
  severityOf,
  type Finding,
} from '../../../src/verify/vulnerabilities.ts';

const now = new Date('2026-11-22T10:00:00Z');
const f = (id: string, severity: Finding['severity'], fixedVersion?: string, resource = 'openssl'): Finding => ({
  id,
  severity,
  resource,
  ...(fixedVersion ? { fixedVersion } : {}),
});

describe('vulnerability gate', () => {
  it('passes findings at or below the maximum severity, and counts every finding', () => {
    const r = gateVulnerabilities(
      { maxSeverity: 'HIGH' },
      [f('CVE-1', 'HIGH', '1.1'), f('CVE-2', 'LOW'), f('CVE-3', 'UNKNOWN')],
      now,
    );
    assert.equal(r.passed, true);
    assert.deepEqual(r.counts, { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 1, UNKNOWN: 1 });
    assert.equal(r.message, 'no finding above HIGH that is not allowed');
  });

  it('blocks findings above it, most severe first, naming them', () => {
    const r = gateVulnerabilities(
      { maxSeverity: 'MEDIUM' },
      [f('CVE-b', 'HIGH', '2'), f('CVE-a', 'CRITICAL', '3', 'glibc'), f('CVE-c', 'MEDIUM', '1')],
      now,
    );
    assert.equal(r.passed, false);
    assert.deepEqual(
      r.blocking.map((x) => x.id),
      ['CVE-a', 'CVE-b'],
    );
    assert.equal(r.message, '2 finding(s) above MEDIUM: CVE-a (CRITICAL in glibc), CVE-b (HIGH in openssl)');
  });

  it('ignores unfixed findings when asked, and only then', () => {
    const findings = [f('CVE-unfixed', 'CRITICAL')];
    assert.equal(gateVulnerabilities({ maxSeverity: 'HIGH', ignoreUnfixed: true }, findings, now).passed, true);
    assert.equal(gateVulnerabilities({ maxSeverity: 'HIGH' }, findings, now).passed, false);
  });

  it('honours an allow-list entry until it expires, then blocks and reports the expired entry', () => {
    const spec = {
      maxSeverity: 'HIGH' as const,
      allow: [{ id: 'CVE-9', reason: 'not reachable', expires: '2026-12-01T00:00:00Z' }],
    };
    const findings = [f('CVE-9', 'CRITICAL', '1.2')];
    assert.equal(gateVulnerabilities(spec, findings, now).passed, true);
    const later = gateVulnerabilities(spec, findings, new Date('2026-12-02T00:00:00Z'));
    assert.equal(later.passed, false);
    assert.deepEqual(later.expiredAllows, ['CVE-9']);
    assert.match(later.message, /allow-list entries expired: CVE-9$/);
  });

  it('names at most five findings and counts the others; a finding repeated across targets counts once', () => {
    const many = Array.from({ length: 8 }, (_, i) => f(`CVE-${i}`, 'CRITICAL', '1'));
    const r = gateVulnerabilities({ maxSeverity: 'HIGH' }, [...many, f('CVE-0', 'CRITICAL', '1')], now);
    assert.equal(r.blocking.length, 8);
    assert.match(r.message, /^8 finding\(s\) above HIGH: .* and 3 more$/);
  });

  it('normalises severities', () => {
    assert.equal(severityOf('critical'), 'CRITICAL');
    assert.equal(severityOf('NEGLIGIBLE'), 'UNKNOWN');
    assert.equal(severityOf(3), 'UNKNOWN');
  });
});

describe('Trivy Operator VulnerabilityReport', () => {
  it('reads the artifact digest and the findings, skipping malformed entries', () => {
    const out = findingsFromTrivyReport({
      apiVersion: 'aquasecurity.github.io/v1alpha1',
      kind: 'VulnerabilityReport',
      report: {
        artifact: { repository: 'shop/web', digest: `sha256:${'a'.repeat(64)}` },
        summary: { criticalCount: 1 },
        vulnerabilities: [
          {
            vulnerabilityID: 'CVE-2026-1',
            severity: 'CRITICAL',
            resource: 'openssl',
            installedVersion: '3.0.1',
            fixedVersion: '3.0.2',
          },
          { vulnerabilityID: 'CVE-2026-2', severity: 'low', resource: 'zlib', fixedVersion: '' },
          { severity: 'HIGH' },
          null,
        ],
      },
    });
    assert.equal(out.digest, `sha256:${'a'.repeat(64)}`);
    assert.deepEqual(out.findings, [
      { id: 'CVE-2026-1', severity: 'CRITICAL', resource: 'openssl', installedVersion: '3.0.1', fixedVersion: '3.0.2' },
      { id: 'CVE-2026-2', severity: 'LOW', resource: 'zlib' },
    ]);
  });

  it('refuses what is not a report, and a report too large to hold', () => {
    assert.throws(() => findingsFromTrivyReport({ kind: 'ConfigMap' }), /no report/);
    assert.throws(() => findingsFromTrivyReport({ report: { vulnerabilities: 'all of them' } }), /not a list/);
    assert.throws(
      () => findingsFromTrivyReport({ report: { vulnerabilities: new Array(MAX_FINDINGS + 1).fill({}) } }),
      /limit 20000/,
    );
    assert.deepEqual(findingsFromTrivyReport({ report: {} }), { findings: [] });
  });
});

describe('cosign vulnerability attestation', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const statement = (over: Record<string, unknown> = {}) => ({
    _type: 'https://in-toto.io/Statement/v0.1',
    subject: [{ name: 'ghcr.io/acme/web', digest: { sha256: 'c'.repeat(64) } }],
    predicateType: 'https://cosign.sigstore.dev/attestation/vuln/v1',
    predicate: {
      scanner: {
        uri: 'pkg:github/aquasecurity/trivy@0.58.0',
        result: {
          SchemaVersion: 2,
          Results: [
            {
              Target: 'alpine 3.20',
              Vulnerabilities: [
                {
                  VulnerabilityID: 'CVE-2026-10',
                  PkgName: 'busybox',
                  InstalledVersion: '1.36',
                  FixedVersion: '1.37',
                  Severity: 'HIGH',
                },
                { VulnerabilityID: 'CVE-2026-11', PkgName: 'zlib', Severity: 'critical' },
                { PkgName: 'no-id' },
              ],
            },
            { Target: 'app', Vulnerabilities: null },
          ],
        },
      },
      metadata: { scanStartedOn: '2026-11-22T09:00:00Z', scanFinishedOn: '2026-11-22T09:01:00Z' },
    },
    ...over,
  });

  it('reads the findings, the scanner and the scan time of a statement about the image', () => {
    const out = findingsFromVulnAttestation(statement(), digest);
    assert.deepEqual(out.findings, [
      { id: 'CVE-2026-10', severity: 'HIGH', resource: 'busybox', installedVersion: '1.36', fixedVersion: '1.37' },
      { id: 'CVE-2026-11', severity: 'CRITICAL', resource: 'zlib' },
    ]);
    assert.equal(out.scanner, 'pkg:github/aquasecurity/trivy@0.58.0');
    assert.equal(out.scannedAt?.toISOString(), '2026-11-22T09:01:00.000Z');
    // Gated like any other source: the unfixed critical blocks unless unfixed findings are ignored.
    assert.equal(gateVulnerabilities({ maxSeverity: 'HIGH' }, out.findings, now).passed, false);
    assert.equal(gateVulnerabilities({ maxSeverity: 'HIGH', ignoreUnfixed: true }, out.findings, now).passed, true);
  });

  it('refuses a statement about another image, of another predicate, or not a statement', () => {
    assert.throws(() => findingsFromVulnAttestation(statement(), `sha256:${'d'.repeat(64)}`), /subject is not/);
    assert.throws(
      () => findingsFromVulnAttestation(statement({ predicateType: 'https://slsa.dev/provenance/v1' }), digest),
      /not a vulnerability attestation/,
    );
    assert.throws(() => findingsFromVulnAttestation({ predicate: {} }, digest), /predicateType undefined/);
    assert.throws(() => findingsFromVulnAttestation('junk', digest), /not an in-toto statement/);
    assert.throws(() => findingsFromVulnAttestation(null, digest), /not an in-toto statement/);
  });
});
