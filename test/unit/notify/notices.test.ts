// Outbound notices: the bodies (Patchline's signed JSON, Slack's {text}), delivery with retries
// to a receiver on 127.0.0.1, and which Events become notices for which GitWriteBack.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { GitWriteBack, ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import { genericBody, notice, slackBody, signatureHeaders } from '../../../src/notify/notices.ts';
import { Notifier } from '../../../src/notify/notifier.ts';
import { NoticeRecorder } from '../../../src/notify/recorder.ts';
import { createLogger } from '../../../src/runtime/logger.ts';
import { createRegistry } from '../../../src/runtime/metrics.ts';
import { FakeHttp, json } from '../../support/fake-http.ts';

const now = new Date('2026-12-06T10:00:00Z');
const merged = notice(
  'PullRequestMerged',
  false,
  'shop/fleet',
  { kind: 'GitWriteBack', namespace: 'shop', name: 'fleet' },
  'pull request #12 was merged as abc: 1 policies follow the rollout',
  { pullRequest: 'https://github.com/acme/deploy/pull/12', commit: 'abc', policies: ['web'], nested: { no: 1 } },
  now,
);

describe('outbound notices', () => {
  it('says what happened in Patchline JSON, signed over the timestamp and the body', () => {
    const body = genericBody(merged);
    const parsed = JSON.parse(body) as Record<string, unknown>;
    assert.equal(parsed.kind, 'Notice');
    assert.equal(parsed.event, 'PullRequestMerged');
    assert.deepEqual(parsed.details, {
      pullRequest: 'https://github.com/acme/deploy/pull/12',
      commit: 'abc',
      policies: ['web'],
    });
    const headers = signatureHeaders('s3cret', body, now);
    const expected = createHmac('sha256', 's3cret').update(`1796551200.${body}`).digest('hex');
    assert.deepEqual(headers, { 'x-patchline-timestamp': '1796551200', 'x-patchline-signature': `sha256=${expected}` });
  });

  it("writes a Slack-compatible body with Slack's escapes and a link to the pull request", () => {
    const hostile = { ...merged, severity: 'warning' as const, message: 'a <script> & <!channel>' };
    const { text } = JSON.parse(slackBody(hostile)) as { text: string };
    assert.equal(
      text,
      ':warning: *Pull request merged* · GitWriteBack shop/fleet\na &lt;script&gt; &amp; &lt;!channel&gt;\n<https://github.com/acme/deploy/pull/12|pull request>',
    );
  });

  describe('delivery', () => {
    const receiver = new FakeHttp();
    const seen: { headers: Record<string, unknown>; body: string }[] = [];
    let answers: number[] = [];
    const logs = new PassThrough();
    let logged = '';
    logs.on('data', (c: Buffer) => (logged += c.toString()));
    const secrets: Record<string, Record<string, string>> = {};
    const registry = createRegistry(false);
    const notifier = new Notifier({
      secrets: (_ns, name) => (secrets[name] ? Promise.resolve(secrets[name]) : Promise.reject(new Error('not found'))),
      log: createLogger({ level: 'info', format: 'json', stream: logs }),
      registry,
      backoffMs: [10, 10],
      now: () => now,
    });

    before(async () => {
      receiver.on('POST', /^\/hooks\/.*/, (req, res, body) => {
        seen.push({ headers: req.headers, body: body.toString() });
        const status = answers.shift() ?? 200;
        if (status === 429) json(res, 429, { error: 'slow down' }, { 'retry-after': '0' });
        else json(res, status, status < 300 ? 'ok' : { error: 'no' });
      });
      await receiver.start();
      secrets.generic = { address: `http://${receiver.host}/hooks/generic`, token: 's3cret' };
      secrets.slack = { address: `http://${receiver.host}/hooks/T000/B000/XXXXsecretpath` };
    });
    after(() => receiver.stop());
    beforeEach(() => {
      seen.length = 0;
      answers = [];
      logged = '';
    });

    it('posts the signed body, retrying what may succeed later (5xx, 429)', async () => {
      answers = [503, 429];
      notifier.send('shop', { secretRef: { name: 'generic' } }, merged);
      await notifier.idle();
      assert.equal(seen.length, 3);
      const last = seen[2]!;
      assert.equal(last.headers['x-patchline-event'], 'PullRequestMerged');
      assert.equal(last.headers['x-patchline-delivery'], merged.id);
      const expected = createHmac('sha256', 's3cret').update(`1796551200.${last.body}`).digest('hex');
      assert.equal(last.headers['x-patchline-signature'], `sha256=${expected}`);
    });

    it('gives up on a refusal at once, and never logs the address (a Slack URL is a secret)', async () => {
      answers = [403];
      notifier.send('shop', { secretRef: { name: 'slack' }, format: 'slack' }, merged);
      notifier.send('shop', { secretRef: { name: 'missing' } }, merged);
      await notifier.idle();
      assert.equal(seen.length, 1, 'a 403 is not retried');
      assert.equal(seen[0]!.headers['x-patchline-signature'], undefined, 'Slack bodies are not signed');
      assert.match(logged, /notice not delivered/);
      assert.ok(!logged.includes('XXXXsecretpath'), 'the webhook path is not logged');
      const metrics = await registry.metrics();
      assert.match(metrics, /patchline_notifications_total\{format="slack",result="failed"\} 1/);
      assert.match(metrics, /patchline_notifications_total\{format="generic",result="failed"\} 1/);
    });
  });

  describe('which Events become notices', () => {
    const sent: { ns: string; secret: string; event: string }[] = [];
    const wb: GitWriteBack = {
      metadata: { name: 'fleet', namespace: 'shop' },
      spec: {
        url: 'https://github.com/acme/deploy.git',
        notify: [
          { secretRef: { name: 'all' } },
          { secretRef: { name: 'merges' }, format: 'slack', events: ['PullRequestMerged', 'RolledBack'] },
        ],
      },
    };
    const policy = (mode: 'GitOps' | 'Auto'): ImagePolicy => ({
      kind: 'ImagePolicy',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        image: 'r.example/web',
        follow: { tag: '1' },
        workloads: {},
        rollout: mode === 'GitOps' ? { mode, gitOps: { writeBackRef: { name: 'fleet' } } } : { mode },
      },
    });
    let mode: 'GitOps' | 'Auto' = 'GitOps';
    const recorded: string[] = [];
    const recorder = new NoticeRecorder(
      { record: (_r, _t, reason) => recorded.push(reason) },
      {
        writeBack: (k) => (k.name === 'fleet' ? wb : undefined),
        policy: () => policy(mode),
        notifier: {
          send: (ns: string, target: { secretRef: { name: string } }, n: { event: string }) =>
            sent.push({ ns, secret: target.secretRef.name, event: n.event }),
        } as unknown as Notifier,
      },
    );
    const gwb = { kind: 'GitWriteBack', metadata: { name: 'fleet', namespace: 'shop' } };
    const ip = { kind: 'ImagePolicy', metadata: { name: 'web', namespace: 'shop' } };

    it('sends what each target asks for, about the write-back and its GitOps policies, and records every Event', () => {
      recorder.record(gwb, 'Normal', 'PullRequestOpened', 'WriteBack', 'opened #1');
      recorder.record(gwb, 'Normal', 'PullRequestMerged', 'WriteBack', 'merged #1');
      recorder.record(ip, 'Normal', 'RolledOut', 'Rollout', 'runs it');
      recorder.record(ip, 'Warning', 'RolledBack', 'Rollout', 'reverting');
      recorder.record(ip, 'Normal', 'CandidateAccepted', 'Verify', 'passed');
      mode = 'Auto';
      recorder.record(ip, 'Normal', 'RolledOut', 'Rollout', 'not written through git');
      assert.deepEqual(
        sent.map((s) => `${s.secret}:${s.event}`),
        [
          'all:PullRequestOpened',
          'all:PullRequestMerged',
          'merges:PullRequestMerged',
          'all:RolledOut',
          'all:RolledBack',
          'merges:RolledBack',
        ],
      );
      assert.equal(recorded.length, 6);
    });
  });
});
