// Trivy Operator's ExposedSecretReports: kept slim and without the secrets' text, indexed by
// digest, judged by verify.secrets (maximum severity, allow-list by rule id and file, expiry).
import assert from 'node:assert/strict';
import { SecretReportIndex, slimSecretReport } from '../../../src/controllers/secret-reports.ts';
import { gateSecrets, type ExposedSecret } from '../../../src/verify/secrets.ts';

const digest = `sha256:${'5'.repeat(64)}`;
const report = (secrets: unknown) => ({
  apiVersion: 'aquasecurity.github.io/v1alpha1',
  kind: 'ExposedSecretReport',
  metadata: { name: 'replicaset-api-5f6b-app', namespace: 'shop', resourceVersion: '7' },
  report: {
    updateTimestamp: '2026-12-01T10:00:00Z',
    artifact: { repository: 'shop/api', tag: '1.0', digest },
    summary: { criticalCount: 1, highCount: 1 },
    secrets,
  },
});
const AWS = {
  target: '/app/.env',
  ruleID: 'aws-access-key-id',
  title: 'AWS Access Key ID',
  category: 'AWS',
  severity: 'CRITICAL',
  match: 'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE',
};
const PAT = {
  target: '/root/.git-credentials',
  ruleID: 'github-pat',
  category: 'GitHub',
  severity: 'HIGH',
  match: 'https://user:ghp_0123456789abcdefghijklmnopqrstuvwxyz@github.com',
};

describe('ExposedSecretReports', () => {
  it('keeps rule id, file, severity and category, never the matched text', () => {
    const slim = slimSecretReport(report([AWS, PAT, { ruleID: '' }, 'junk']));
    assert.equal(slim.digest, digest);
    assert.equal(slim.updated, '2026-12-01T10:00:00Z');
    assert.deepEqual(slim.secrets, [
      { ruleId: 'aws-access-key-id', target: '/app/.env', severity: 'CRITICAL', category: 'AWS' },
      { ruleId: 'github-pat', target: '/root/.git-credentials', severity: 'HIGH', category: 'GitHub' },
    ]);
    assert.ok(!JSON.stringify(slim).includes('AKIAIOSFODNN7EXAMPLE'), 'the secret is not held');
    assert.ok(!JSON.stringify(slim).includes('ghp_'), 'the secret is not held');
    assert.match(slimSecretReport({ metadata: { name: 'x', namespace: 'y' } }).problem ?? '', /no report/);
    assert.match(slimSecretReport(report('nope')).problem ?? '', /not a list/);
  });

  it('indexes reports by digest, the readable ones only', () => {
    const index = new SecretReportIndex();
    index.set(slimSecretReport(report([AWS])));
    assert.equal(index.forDigest(digest, 'shop')?.secrets.length, 1);
    assert.equal(index.forDigest(`sha256:${'6'.repeat(64)}`, 'shop'), undefined);
  });

  it('refuses secrets above the gate unless allowed (by rule, or rule and file) and not expired', () => {
    const secrets: ExposedSecret[] = slimSecretReport(report([AWS, PAT])).secrets;
    const now = new Date('2026-12-06T10:00:00Z');
    const none = gateSecrets({ maxSeverity: 'NONE' }, secrets, now);
    assert.equal(none.passed, false);
    assert.deepEqual(none.counts, { CRITICAL: 1, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
    assert.deepEqual(none.rules, ['aws-access-key-id', 'github-pat']);
    assert.equal(
      none.message,
      '2 exposed secret(s) above NONE: aws-access-key-id (CRITICAL) in /app/.env, github-pat (HIGH) in /root/.git-credentials',
    );
    assert.ok(!none.message.includes('AKIA'));
    assert.equal(gateSecrets({ maxSeverity: 'HIGH' }, secrets, now).blocking.length, 1, 'HIGH refuses CRITICAL');
    const allowed = gateSecrets(
      {
        maxSeverity: 'NONE',
        allow: [
          { ruleId: 'aws-access-key-id', path: '/app/.env', expires: '2027-01-01', reason: 'a revoked test key' },
          { ruleId: 'github-pat', path: '/elsewhere', expires: '2027-01-01', reason: 'another file' },
        ],
      },
      secrets,
      now,
    );
    assert.deepEqual(
      allowed.blocking.map((s) => s.ruleId),
      ['github-pat'],
      'an entry for another file covers nothing',
    );
    const expired = gateSecrets(
      {
        maxSeverity: 'NONE',
        allow: [{ ruleId: 'aws-access-key-id', expires: '2026-12-01', reason: 'was a test key' }],
      },
      secrets,
      now,
    );
    assert.match(expired.message, /allow-list entries expired: aws-access-key-id$/);
    const unknown = gateSecrets({ maxSeverity: 'CRITICAL' }, [{ ruleId: 'x', target: '/f', severity: 'UNKNOWN' }], now);
    assert.equal(unknown.passed, false, 'a secret of unknown severity is still a secret');
  });
});
