import assert from 'node:assert/strict';
import { correlationId, substitute, substituteJson } from '../../../src/builders/request.ts';
import { BuildError, type BuildRequest } from '../../../src/builders/types.ts';
import { parsePhase, parseReportedStatus, sign, WebhookProvider } from '../../../src/builders/webhook.ts';
import { FakeHttp, json } from '../../support/fake-http.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function request(): BuildRequest {
  return {
    correlationId: correlationId('uid', 'rev', 2),
    attempt: 2,
    trigger: { namespace: 'team', name: 'api', uid: 'uid' },
    base: { image: 'python:3.12-slim', digest: DIGEST, ref: `docker.io/library/python@${DIGEST}` },
    target: { image: 'registry.example.com/team/api:stable' },
    requestedAt: new Date(),
    timeoutMs: 600_000,
  };
}

describe('substitutions', () => {
  it("replaces known variables and leaves the build system's own alone", () => {
    const vars = { 'base.ref': 'x@sha256:1', 'build.id': 'pl1' };
    assert.equal(
      substitute('FROM $(base.ref) # $(build.id) $(params.tag) $(date +%s)', vars),
      'FROM x@sha256:1 # pl1 $(params.tag) $(date +%s)',
    );
  });

  it('substitutes inside JSON strings without breaking the JSON', () => {
    assert.deepEqual(substituteJson({ a: ['$(v)', 3], b: { c: 'q"$(v)' } }, { v: 'say "hi"' }), {
      a: ['say "hi"', 3],
      b: { c: 'q"say "hi"' },
    });
  });

  it('derives one correlation id per trigger, revision and attempt', () => {
    assert.match(correlationId('u', 'r', 1), /^pl[a-f0-9]{16}$/);
    assert.equal(correlationId('u', 'r', 1), correlationId('u', 'r', 1));
    assert.notEqual(correlationId('u', 'r', 1), correlationId('u', 'r', 2));
    assert.notEqual(correlationId('u', 'r', 1), correlationId('v', 'r', 1));
  });
});

describe('webhook build provider', () => {
  let server: FakeHttp;
  let received: { headers: Record<string, string | string[] | undefined>; body: string }[];

  beforeEach(async () => {
    server = new FakeHttp();
    received = [];
    server.on('POST', '/builds', (req, res, body) => {
      received.push({ headers: req.headers, body: body.toString() });
      json(res, 202, { id: 'ext-77', url: 'https://builds.example.com/ext-77', status: 'queued' });
    });
    await server.start();
  });
  afterEach(() => server.stop());

  it('posts a signed, idempotent request with the template substituted', async () => {
    const provider = new WebhookProvider(
      {
        url: `http://${server.host}/builds`,
        body: '{"repo": "team/api", "args": {"BASE": "$(base.ref)"}, "id": "$(build.id)"}',
      },
      { hmacKey: 'k3y', token: 'tok' },
    );
    const req = request();
    const handle = await provider.start(req);
    assert.deepEqual(handle, { id: req.correlationId, externalId: 'ext-77', url: 'https://builds.example.com/ext-77' });
    const [r] = received;
    assert.deepEqual(JSON.parse(r!.body), { repo: 'team/api', args: { BASE: req.base.ref }, id: req.correlationId });
    assert.equal(r!.headers['idempotency-key'], req.correlationId);
    assert.equal(r!.headers['x-patchline-build-id'], req.correlationId);
    assert.equal(r!.headers['x-patchline-signature'], sign('k3y', r!.body));
    assert.equal(r!.headers.authorization, 'Bearer tok');
  });

  it('sends a default body describing the build when there is no template', async () => {
    const req = request();
    await new WebhookProvider({ url: `http://${server.host}/builds` }, undefined).start(req);
    assert.deepEqual(JSON.parse(received[0]!.body), {
      buildId: req.correlationId,
      attempt: 2,
      trigger: req.trigger,
      base: req.base,
      target: req.target,
    });
    assert.equal(received[0]!.headers['x-patchline-signature'], undefined, 'unsigned without a key');
  });

  it('polls the status URL with the external id', async () => {
    let n = 0;
    server.on('GET', '/builds/ext-77', (_req, res) => {
      const states = [
        { status: 'running' },
        { status: 'succeeded', digest: DIGEST, url: 'https://builds.example.com/ext-77' },
      ];
      json(res, 200, states[Math.min(n++, 1)]);
    });
    const provider = new WebhookProvider(
      { url: `http://${server.host}/builds`, statusURL: `http://${server.host}/builds/$(build.externalId)` },
      { hmacKey: 'k' },
    );
    const handle = await provider.start(request());
    assert.equal((await provider.status(request(), handle)).phase, 'Running');
    const done = await provider.status(request(), handle);
    assert.deepEqual(done, { phase: 'Succeeded', outputDigest: DIGEST, url: 'https://builds.example.com/ext-77' });
  });

  it('waits for a callback when there is no status URL', async () => {
    const provider = new WebhookProvider({ url: `http://${server.host}/builds` }, undefined);
    assert.equal((await provider.status(request(), { id: 'x' })).phase, 'Running');
  });

  it('tells the service where to call back when the operator knows its address and there is no status URL', async () => {
    const req = request();
    const base = 'http://patchline-shard-one-webhooks.patchline-system.svc';
    const callback = `${base}/callbacks/builds/${req.correlationId}`;
    await new WebhookProvider({ url: `http://${server.host}/builds` }, { hmacKey: 'k' }, base).start(req);
    assert.equal(received[0]!.headers['x-patchline-callback-url'], callback);
    assert.equal((JSON.parse(received[0]!.body) as { callbackURL?: string }).callbackURL, callback);
    await new WebhookProvider(
      { url: `http://${server.host}/builds`, body: '{"notify": "$(build.callbackURL)"}' },
      { hmacKey: 'k' },
      base,
    ).start(req);
    assert.deepEqual(JSON.parse(received[1]!.body), { notify: callback });
    // Polled builds are not called back; without the address, the service's own setting holds.
    await new WebhookProvider(
      { url: `http://${server.host}/builds`, statusURL: `http://${server.host}/builds/$(build.id)` },
      { hmacKey: 'k' },
      base,
    ).start(req);
    await new WebhookProvider({ url: `http://${server.host}/builds` }, { hmacKey: 'k' }).start(req);
    for (const r of received.slice(2)) {
      assert.equal(r.headers['x-patchline-callback-url'], undefined);
      assert.equal((JSON.parse(r.body) as { callbackURL?: string }).callbackURL, undefined);
    }
  });

  it('classifies refusals, outages and nonsense', async () => {
    server.on('POST', '/refuse', (_req, res) => json(res, 400, { message: 'unknown repository' }));
    server.on('POST', '/down', (_req, res) => json(res, 502, {}));
    server.on('GET', '/weird', (_req, res) => json(res, 200, { state_of_things: 'good' }));
    const req = request();
    await assert.rejects(
      new WebhookProvider({ url: `http://${server.host}/refuse` }, undefined).start(req),
      (e: unknown) => e instanceof BuildError && e.kind === 'rejected' && /unknown repository/.test(e.message),
    );
    await assert.rejects(
      new WebhookProvider({ url: `http://${server.host}/down` }, undefined).start(req),
      (e: unknown) => e instanceof BuildError && e.kind === 'unavailable',
    );
    await assert.rejects(
      new WebhookProvider({ url: 'http://127.0.0.1:1/x' }, undefined).start(req),
      (e: unknown) => e instanceof BuildError && e.kind === 'unavailable',
    );
    await assert.rejects(
      new WebhookProvider({ url: 'http://x', body: '{not json' }, undefined).start(req),
      (e: unknown) => e instanceof BuildError && e.kind === 'rejected' && /not valid JSON/.test(e.message),
    );
    await assert.rejects(
      new WebhookProvider({ url: 'http://x', statusURL: `http://${server.host}/weird` }, undefined).status(req, {
        id: 'a',
      }),
      (e: unknown) => e instanceof BuildError && e.kind === 'unavailable' && /without a known "status"/.test(e.message),
    );
  });

  it('reads the phase words build services use', () => {
    assert.equal(parsePhase('SUCCESS'), 'Succeeded');
    assert.equal(parsePhase('in_progress'), 'Running');
    assert.equal(parsePhase('canceled'), 'Cancelled');
    assert.equal(parsePhase('weird'), undefined);
    assert.deepEqual(parseReportedStatus({ status: 'failed', message: 'x', digest: 'not-a-digest' }), {
      phase: 'Failed',
      message: 'x',
    });
  });
});
