// Registry scanners through their documented APIs, with nock standing in for the services
// (request and response shapes from their documentation: Harbor API v2.0 artifacts with
// scan_overview and the vulnerabilities addition; Amazon ECR DescribeImageScanFindings, through
// the real AWS SDK; Container Analysis v1 occurrences; Azure Resource Graph resources 2022-10-01;
// Quay's manifest security API). Each test asserts the request path, query and headers, and what
// the answer becomes: scanned with findings, still scanning, or unknown.
import assert from 'node:assert/strict';
import nock from 'nock';
import { RegistryScans, type ScannerSpec } from '../../../src/controllers/registry-scans.ts';
import { anonymousSource, type CredentialSource } from '../../../src/registry/auth/credentials.ts';
import { parseReference } from '../../../src/registry/reference.ts';
import { ArtifactAnalysisScanner } from '../../../src/verify/scanners/artifact-analysis.ts';
import { DefenderScanner, defenderQuery } from '../../../src/verify/scanners/defender.ts';
import { EcrScanner } from '../../../src/verify/scanners/ecr.ts';
import { HarborScanner } from '../../../src/verify/scanners/harbor.ts';
import { QuayScanner } from '../../../src/verify/scanners/quay.ts';
import { ScannerError } from '../../../src/verify/scanners/types.ts';
import { withAwsTestEnv } from '../../support/env-vars.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const REPORT_11 = 'application/vnd.security.vulnerability.report; version=1.1';

describe('registry scanners (nock for the services)', () => {
  before(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  after(() => nock.enableNetConnect());

  describe('Harbor', () => {
    const image = parseReference('harbor.example.com/shop/team/web');
    const artifact = `/api/v2.0/projects/shop/repositories/team%252Fweb/artifacts/${DIGEST}`;

    it('reads the scan overview, then the vulnerability addition, with basic credentials and the report types', async () => {
      const harbor = nock('https://harbor.example.com')
        .get(artifact)
        .query({ with_scan_overview: 'true' })
        .matchHeader('authorization', `Basic ${Buffer.from('robot$shop+scanner:s3cret').toString('base64')}`)
        .matchHeader('x-accept-vulnerabilities', /application\/vnd\.security\.vulnerability\.report; version=1\.1/)
        .reply(200, {
          digest: DIGEST,
          scan_overview: {
            [REPORT_11]: {
              scan_status: 'Success',
              severity: 'High',
              end_time: '2026-12-06T10:00:00Z',
              summary: { total: 2, fixable: 1, summary: { High: 1, Low: 1 } },
            },
          },
        })
        .get(`${artifact}/additions/vulnerabilities`)
        .reply(200, {
          [REPORT_11]: {
            generated_at: '2026-12-06T10:00:00Z',
            vulnerabilities: [
              { id: 'CVE-2026-0001', package: 'openssl', version: '3.0.1', fix_version: '3.0.2', severity: 'High' },
              { id: 'CVE-2026-0002', package: 'zlib', version: '1.2.13', fix_version: '', severity: 'Low' },
              { package: 'no-id' },
            ],
          },
        });
      const scanner = new HarborScanner('harbor.example.com', {
        credential: () => Promise.resolve({ username: 'robot$shop+scanner', password: 's3cret' }),
      });
      const answer = await scanner.scan(image, DIGEST);
      assert.deepEqual(answer, {
        state: 'scanned',
        scannedAt: new Date('2026-12-06T10:00:00Z'),
        findings: [
          {
            id: 'CVE-2026-0001',
            severity: 'HIGH',
            resource: 'openssl',
            installedVersion: '3.0.1',
            fixedVersion: '3.0.2',
          },
          { id: 'CVE-2026-0002', severity: 'LOW', resource: 'zlib', installedVersion: '1.2.13' },
        ],
      });
      assert.ok(harbor.isDone());
    });

    it('says a scan is running, and that an artifact never scanned is unknown (no second request)', async () => {
      nock('https://harbor.example.com')
        .get(artifact)
        .query(true)
        .reply(200, { scan_overview: { [REPORT_11]: { scan_status: 'Running' } } })
        .get(artifact)
        .query(true)
        .reply(200, { digest: DIGEST })
        .get(artifact)
        .query(true)
        .reply(200, { scan_overview: { [REPORT_11]: { scan_status: 'Error' } } });
      const scanner = new HarborScanner('harbor.example.com');
      assert.deepEqual(await scanner.scan(image, DIGEST), { state: 'pending', detail: 'Harbor scan Running' });
      assert.deepEqual(await scanner.scan(image, DIGEST), { state: 'unknown', detail: 'Harbor has not scanned it' });
      assert.deepEqual(await scanner.scan(image, DIGEST), { state: 'unknown', detail: 'Harbor scan Error' });
    });

    it('says what Harbor answered on an error', async () => {
      nock('https://harbor.example.com')
        .get(artifact)
        .query(true)
        .reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });
      await assert.rejects(
        new HarborScanner('harbor.example.com').scan(image, DIGEST),
        /Harbor answered HTTP 401: unauthorized/,
      );
    });
  });

  describe('Amazon ECR', () => {
    let restore: () => void;
    beforeEach(() => {
      restore = withAwsTestEnv();
    });
    afterEach(() => restore());
    const image = parseReference('111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/web');
    const target = 'AmazonEC2ContainerRegistry_V20150921.DescribeImageScanFindings';

    it('pages DescribeImageScanFindings in the registry region, reading basic and enhanced findings', async () => {
      const bodies: Record<string, unknown>[] = [];
      nock('https://api.ecr.eu-west-1.amazonaws.com')
        .post('/', (b: Record<string, unknown>) => (bodies.push(b), true))
        .matchHeader('x-amz-target', target)
        .matchHeader(
          'authorization',
          /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d+\/eu-west-1\/ecr\/aws4_request/,
        )
        .reply(200, {
          imageScanStatus: { status: 'COMPLETE', description: 'The scan was completed successfully.' },
          imageScanFindings: {
            imageScanCompletedAt: 1796551200,
            findings: [
              {
                name: 'CVE-2026-0003',
                severity: 'CRITICAL',
                attributes: [
                  { key: 'package_name', value: 'glibc' },
                  { key: 'package_version', value: '2.36' },
                ],
              },
            ],
          },
          nextToken: 'page-2',
        })
        .post('/', (b: Record<string, unknown>) => (bodies.push(b), true))
        .reply(200, {
          imageScanStatus: { status: 'ACTIVE' },
          imageScanFindings: {
            enhancedFindings: [
              {
                severity: 'HIGH',
                title: 'CVE-2026-0004 - curl',
                packageVulnerabilityDetails: {
                  vulnerabilityId: 'CVE-2026-0004',
                  vulnerablePackages: [{ name: 'curl', version: '7.88.1', fixedInVersion: '7.88.2' }],
                },
              },
            ],
          },
        });
      const answer = await new EcrScanner().scan(image, DIGEST);
      assert.deepEqual(bodies, [
        { registryId: '111122223333', repositoryName: 'shop/web', imageId: { imageDigest: DIGEST }, maxResults: 1000 },
        {
          registryId: '111122223333',
          repositoryName: 'shop/web',
          imageId: { imageDigest: DIGEST },
          maxResults: 1000,
          nextToken: 'page-2',
        },
      ]);
      assert.deepEqual(answer, {
        state: 'scanned',
        scannedAt: new Date(1796551200 * 1000),
        findings: [
          { id: 'CVE-2026-0003', severity: 'CRITICAL', resource: 'glibc', installedVersion: '2.36' },
          {
            id: 'CVE-2026-0004',
            severity: 'HIGH',
            resource: 'curl',
            installedVersion: '7.88.1',
            fixedVersion: '7.88.2',
          },
        ],
      });
    });

    it('waits for a scan in progress; a digest never scanned is unknown', async () => {
      nock('https://api.ecr.eu-west-1.amazonaws.com')
        .post('/')
        .reply(200, { imageScanStatus: { status: 'IN_PROGRESS' } })
        .post('/')
        .reply(400, { __type: 'ScanNotFoundException', message: 'Image scan does not exist for the image' });
      assert.deepEqual(await new EcrScanner().scan(image, DIGEST), {
        state: 'pending',
        detail: 'ECR scan IN_PROGRESS',
      });
      assert.deepEqual(await new EcrScanner().scan(image, DIGEST), {
        state: 'unknown',
        detail: 'ECR: ScanNotFoundException',
      });
    });

    it('refuses a registry that is not ECR', async () => {
      await assert.rejects(new EcrScanner().scan(parseReference('ghcr.io/acme/web'), DIGEST), ScannerError);
    });
  });

  describe('Google Artifact Analysis', () => {
    const image = parseReference('europe-docker.pkg.dev/shop-prod/images/web');
    const resourceUrl = `https://europe-docker.pkg.dev/shop-prod/images/web@${DIGEST}`;

    it('reads the DISCOVERY occurrence, then the VULNERABILITY occurrences, with a bearer token', async () => {
      const api = nock('https://containeranalysis.googleapis.com')
        .get('/v1/projects/shop-prod/occurrences')
        .query({ filter: `kind="DISCOVERY" AND resourceUrl="${resourceUrl}"`, pageSize: '1000' })
        .matchHeader('authorization', 'Bearer ya29.test')
        .reply(200, {
          occurrences: [
            {
              kind: 'DISCOVERY',
              resourceUri: resourceUrl,
              discovery: { analysisStatus: 'FINISHED_SUCCESS', lastScanTime: '2026-12-06T09:00:00Z' },
            },
          ],
        })
        .get('/v1/projects/shop-prod/occurrences')
        .query({ filter: `kind="VULNERABILITY" AND resourceUrl="${resourceUrl}"`, pageSize: '1000' })
        .reply(200, {
          occurrences: [
            {
              noteName: 'projects/goog-vulnz/notes/CVE-2026-0005',
              vulnerability: {
                effectiveSeverity: 'MEDIUM',
                shortDescription: 'CVE-2026-0005',
                packageIssue: [
                  {
                    affectedPackage: 'libxml2',
                    affectedVersion: { fullName: '2.9.14' },
                    fixedVersion: { kind: 'MAXIMUM' },
                    fixAvailable: false,
                  },
                ],
              },
            },
          ],
          nextPageToken: 'next',
        })
        .get('/v1/projects/shop-prod/occurrences')
        .query({ filter: `kind="VULNERABILITY" AND resourceUrl="${resourceUrl}"`, pageSize: '1000', pageToken: 'next' })
        .reply(200, {
          occurrences: [
            {
              noteName: 'projects/goog-vulnz/notes/CVE-2026-0006',
              vulnerability: {
                severity: 'HIGH',
                packageIssue: [
                  {
                    affectedPackage: 'openssl',
                    affectedVersion: { fullName: '3.0.1' },
                    fixedVersion: { fullName: '3.0.2' },
                    fixAvailable: true,
                  },
                ],
              },
            },
          ],
        });
      const scanner = new ArtifactAnalysisScanner({ token: () => Promise.resolve('ya29.test') });
      assert.deepEqual(await scanner.scan(image, DIGEST), {
        state: 'scanned',
        scannedAt: new Date('2026-12-06T09:00:00Z'),
        findings: [
          { id: 'CVE-2026-0005', severity: 'MEDIUM', resource: 'libxml2', installedVersion: '2.9.14' },
          {
            id: 'CVE-2026-0006',
            severity: 'HIGH',
            resource: 'openssl',
            installedVersion: '3.0.1',
            fixedVersion: '3.0.2',
          },
        ],
      });
      assert.ok(api.isDone());
    });

    it('waits while the scan is pending; no discovery occurrence is unknown', async () => {
      nock('https://containeranalysis.googleapis.com')
        .get('/v1/projects/shop-prod/occurrences')
        .query(true)
        .reply(200, { occurrences: [{ discovery: { analysisStatus: 'SCANNING' } }] })
        .get('/v1/projects/shop-prod/occurrences')
        .query(true)
        .reply(200, {});
      const scanner = new ArtifactAnalysisScanner({ token: () => Promise.resolve('ya29.test') });
      assert.deepEqual(await scanner.scan(image, DIGEST), { state: 'pending', detail: 'Artifact Analysis SCANNING' });
      assert.equal((await scanner.scan(image, DIGEST)).state, 'unknown');
    });
  });

  describe('Microsoft Defender for Containers (Azure Resource Graph)', () => {
    const image = parseReference('shopacr.azurecr.io/shop/web');

    it('posts the sub-assessment query for the image, pages with $skipToken, and reads the findings', async () => {
      const queries: Record<string, unknown>[] = [];
      nock('https://management.azure.com')
        .post('/providers/Microsoft.ResourceGraph/resources', (b: Record<string, unknown>) => (queries.push(b), true))
        .query({ 'api-version': '2022-10-01' })
        .matchHeader('authorization', 'Bearer entra-token')
        .reply(200, {
          totalRecords: 2,
          data: [
            {
              id: 'CVE-2026-0007',
              cve: 'CVE-2026-0007',
              status: 'Unhealthy',
              severity: 'High',
              package: 'openssl',
              version: '3.0.1',
              fixedVersion: '3.0.2',
              generated: '2026-12-06T08:00:00Z',
            },
          ],
          $skipToken: 'more',
        })
        .post('/providers/Microsoft.ResourceGraph/resources', (b: Record<string, unknown>) => (queries.push(b), true))
        .query(true)
        .reply(200, {
          data: [{ id: 'CVE-2026-0008', status: 'Unhealthy', severity: 'Low', generated: '2026-12-06T08:30:00Z' }],
        });
      const scanner = new DefenderScanner({
        subscriptions: ['00000000-0000-0000-0000-000000000001'],
        token: () => Promise.resolve('entra-token'),
      });
      const answer = await scanner.scan(image, DIGEST);
      const query = defenderQuery(image, DIGEST);
      assert.match(query, /where tostring\(artifact.repositoryName\) == 'shop\/web'/);
      assert.match(query, new RegExp(`where tostring\\(artifact.digest\\) == '${DIGEST}'`));
      assert.deepEqual(queries, [
        {
          subscriptions: ['00000000-0000-0000-0000-000000000001'],
          query,
          options: { resultFormat: 'objectArray', $top: 1000 },
        },
        {
          subscriptions: ['00000000-0000-0000-0000-000000000001'],
          query,
          options: { resultFormat: 'objectArray', $top: 1000, $skipToken: 'more' },
        },
      ]);
      assert.deepEqual(answer, {
        state: 'scanned',
        scannedAt: new Date('2026-12-06T08:30:00Z'),
        findings: [
          {
            id: 'CVE-2026-0007',
            severity: 'HIGH',
            resource: 'openssl',
            installedVersion: '3.0.1',
            fixedVersion: '3.0.2',
          },
          { id: 'CVE-2026-0008', severity: 'LOW' },
        ],
      });
    });

    it('an image Defender has not assessed is unknown; nothing with a quote reaches the query', async () => {
      nock('https://management.azure.com')
        .post('/providers/Microsoft.ResourceGraph/resources')
        .query(true)
        .reply(200, { data: [] });
      const scanner = new DefenderScanner({ token: () => Promise.resolve('entra-token') });
      assert.deepEqual(await scanner.scan(image, DIGEST), {
        state: 'unknown',
        detail: 'Defender has no assessment of it',
      });
      assert.throws(() => defenderQuery({ ...image, repository: "shop/web' or 1==1" }, DIGEST), ScannerError);
    });
  });

  describe('Quay', () => {
    const image = parseReference('quay.io/acme/web');
    const path = `/api/v1/repository/acme/web/manifest/${DIGEST}/security`;

    it('reads the security report of the manifest, with a bearer token when given', async () => {
      nock('https://quay.io')
        .get(path)
        .query({ vulnerabilities: 'true' })
        .matchHeader('authorization', 'Bearer quay-oauth')
        .reply(200, {
          status: 'scanned',
          data: {
            Layer: {
              Features: [
                {
                  Name: 'openssl',
                  Version: '3.0.1',
                  Vulnerabilities: [{ Name: 'CVE-2026-0009', Severity: 'High', FixedBy: '3.0.2' }],
                },
                { Name: 'bash', Version: '5.2', Vulnerabilities: [{ Name: 'CVE-2026-0010', Severity: 'Negligible' }] },
              ],
            },
          },
        });
      const scanner = new QuayScanner('quay.io', { token: () => Promise.resolve('quay-oauth') });
      assert.deepEqual(await scanner.scan(image, DIGEST), {
        state: 'scanned',
        findings: [
          {
            id: 'CVE-2026-0009',
            severity: 'HIGH',
            resource: 'openssl',
            installedVersion: '3.0.1',
            fixedVersion: '3.0.2',
          },
          { id: 'CVE-2026-0010', severity: 'LOW', resource: 'bash', installedVersion: '5.2' },
        ],
      });
    });

    it('waits for a queued scan; unsupported is unknown', async () => {
      nock('https://quay.io')
        .get(path)
        .query(true)
        .reply(200, { status: 'queued', data: null })
        .get(path)
        .query(true)
        .reply(200, { status: 'unsupported', data: null });
      const scanner = new QuayScanner('quay.io');
      assert.deepEqual(await scanner.scan(image, DIGEST), { state: 'pending', detail: 'Quay scan queued' });
      assert.deepEqual(await scanner.scan(image, DIGEST), { state: 'unknown', detail: 'Quay scan unsupported' });
    });
  });

  describe('several scanners for one policy', () => {
    const image = parseReference('harbor.example.com/shop/web');
    const artifact = `/api/v2.0/projects/shop/repositories/web/artifacts/${DIGEST}`;
    const pullSource: CredentialSource = {
      id: 'secret:shop/pull@1',
      credentialFor: () => Promise.resolve({ kind: 'basic', username: 'puller', password: 'pull-pass' }),
    };

    it('asks in order: a finished scan judges; a pending one is kept while the next is asked', async () => {
      nock('https://harbor.example.com')
        .get(artifact)
        .query(true)
        .matchHeader('authorization', `Basic ${Buffer.from('puller:pull-pass').toString('base64')}`)
        .reply(200, { scan_overview: { [REPORT_11]: { scan_status: 'Pending' } } });
      nock('https://quay.internal')
        .get(`/api/v1/repository/shop/web/manifest/${DIGEST}/security`)
        .query(true)
        .matchHeader('authorization', 'Bearer from-secret')
        .reply(404, { error_message: 'Not Found' });
      const scans = new RegistryScans({
        secrets: (ns, name): Promise<Record<string, string>> =>
          Promise.resolve<Record<string, string>>(ns === 'shop' && name === 'quay' ? { token: 'from-secret' } : {}),
      });
      const specs: ScannerSpec[] = [
        { type: 'harbor' },
        { type: 'quay', url: 'https://quay.internal', secretRef: { name: 'quay' } },
      ];
      const verdict = await scans.judge({ namespace: 'shop', image, digest: DIGEST, source: pullSource, specs });
      assert.deepEqual(verdict, {
        state: 'pending',
        source: 'Harbor harbor.example.com',
        detail: 'Harbor scan Pending',
      });
    });

    it('caches a pending answer for 30 s and a finished one for an hour', async () => {
      let now = 0;
      const harbor = nock('https://harbor.example.com')
        .get(artifact)
        .query(true)
        .reply(200, { scan_overview: { [REPORT_11]: { scan_status: 'Running' } } })
        .get(artifact)
        .query(true)
        .reply(200, { scan_overview: { [REPORT_11]: { scan_status: 'Success' } } })
        .get(`${artifact}/additions/vulnerabilities`)
        .reply(200, { [REPORT_11]: { vulnerabilities: [] } });
      const scans = new RegistryScans({ secrets: () => Promise.resolve({}), now: () => now });
      const l = {
        namespace: 'shop',
        image,
        digest: DIGEST,
        source: anonymousSource,
        specs: [{ type: 'harbor' as const }],
      };
      assert.equal((await scans.judge(l)).state, 'pending');
      now += 10_000;
      assert.equal((await scans.judge(l)).state, 'pending'); // cached: no request
      now += 25_000;
      assert.deepEqual(await scans.judge(l), {
        state: 'scanned',
        source: 'Harbor harbor.example.com scan',
        findings: [],
      });
      now += 30 * 60_000;
      assert.equal((await scans.judge(l)).state, 'scanned'); // cached: no request
      assert.ok(harbor.isDone());
    });

    it('names every scanner that could not judge, and why', async () => {
      nock('https://harbor.example.com')
        .get(artifact)
        .query(true)
        .reply(404, { errors: [{ message: 'artifact not found' }] });
      const scans = new RegistryScans({ secrets: () => Promise.resolve({}) });
      const verdict = await scans.judge({
        namespace: 'shop',
        image,
        digest: DIGEST,
        source: anonymousSource,
        specs: [{ type: 'harbor' }, { type: 'quay', secretRef: { name: 'empty' } }],
      });
      assert.deepEqual(verdict, {
        state: 'none',
        notes: [
          'Harbor harbor.example.com: not found',
          'Quay harbor.example.com: the Secret shop/empty has no "token"',
        ],
      });
    });
  });
});
