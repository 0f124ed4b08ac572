import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { PayloadError, parsePayload } from '../../../src/registry/webhooks/formats.ts';
import { WebhookServer, type Receiver } from '../../../src/registry/webhooks/server.ts';
import type { InboxEntry } from '../../../src/registry/webhooks/inbox.ts';
import type { PushNotice } from '../../../src/registry/watcher.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { createRegistry } from '../../../src/runtime/metrics.ts';

const D = `sha256:${'d'.repeat(64)}`;

describe('registry webhook payloads', () => {
  it('distribution: manifest pushes (with the digest pushed) and deletions, not blobs or pulls', () => {
    const body = {
      events: [
        {
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            repository: 'team/app',
            tag: '1.4',
            digest: D,
            url: 'http://registry.internal:5000/v2/team/app/manifests/sha256:dd',
          },
          request: { host: 'registry.internal:5000' },
        },
        { action: 'push', target: { mediaType: 'application/octet-stream', repository: 'team/app', digest: D } },
        {
          action: 'pull',
          target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: 'team/app', tag: '1.4' },
        },
        {
          action: 'delete',
          target: { repository: 'team/app', tag: 'old' },
          request: { host: 'registry.internal:5000' },
        },
      ],
    };
    assert.deepEqual(parsePayload('distribution', body).notices, [
      { registry: 'registry.internal:5000', repository: 'team/app', tag: '1.4', digest: D },
      { registry: 'registry.internal:5000', repository: 'team/app', tag: 'old' },
    ]);
  });

  it('acr: webhook, Event Grid and CloudEvents envelopes, and the subscription handshake', () => {
    const data = {
      id: '1',
      action: 'push',
      target: { repository: 'shop/web', tag: '1.4', digest: D },
      request: { host: 'shop.azurecr.io' },
    };
    const expected = [{ registry: 'shop.azurecr.io', repository: 'shop/web', tag: '1.4', digest: D }];
    assert.deepEqual(parsePayload('acr', data).notices, expected);
    assert.deepEqual(
      parsePayload('acr', [{ eventType: 'Microsoft.ContainerRegistry.ImagePushed', data }]).notices,
      expected,
    );
    assert.deepEqual(
      parsePayload('acr', { specversion: '1.0', type: 'Microsoft.ContainerRegistry.ImagePushed', data }).notices,
      expected,
    );
    assert.deepEqual(parsePayload('acr', [{ eventType: 'Microsoft.ContainerRegistry.ChartPushed', data }]).notices, []);
    // The short forms of the types, in both schemas; deletions ask for a look too.
    assert.deepEqual(parsePayload('acr', [{ eventType: 'ImagePushed', data }]).notices, expected);
    assert.deepEqual(parsePayload('acr', { specversion: '1.0', type: 'ImagePushed', data }).notices, expected);
    const deleted = { ...data, action: 'delete' };
    assert.deepEqual(parsePayload('acr', [{ eventType: 'ImageDeleted', data: deleted }]).notices, [
      { registry: 'shop.azurecr.io', repository: 'shop/web', tag: '1.4' },
    ]);
    assert.deepEqual(parsePayload('acr', { specversion: '1.0', type: 'ChartPushed', data }).notices, []);
    assert.deepEqual(
      parsePayload('acr', [
        { eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'abc-123' } },
      ]),
      {
        notices: [],
        validationCode: 'abc-123',
      },
    );
  });

  it('harbor: default and CloudEvents formats', () => {
    const eventData = {
      repository: { name: 'nginx', namespace: 'library', repo_full_name: 'library/nginx' },
      resources: [{ digest: D, tag: '1.27', resource_url: 'harbor.example.com/library/nginx:1.27' }],
    };
    const expected = [{ registry: 'harbor.example.com', repository: 'library/nginx', tag: '1.27', digest: D }];
    assert.deepEqual(
      parsePayload('harbor', { type: 'PUSH_ARTIFACT', occur_at: 1, operator: 'admin', event_data: eventData }).notices,
      expected,
    );
    assert.deepEqual(
      parsePayload('harbor', { specversion: '1.0', type: 'harbor.artifact.pushed', data: eventData }).notices,
      expected,
    );
    assert.deepEqual(parsePayload('harbor', { type: 'SCANNING_COMPLETED', event_data: eventData }).notices, []);
  });

  it('keeps an announced digest only when it is a well-formed sha256 digest of a tag push', () => {
    const event = (target: object) => ({ events: [{ action: 'push', target: { repository: 'team/app', ...target } }] });
    const notices = (target: object) => parsePayload('distribution', event(target)).notices;
    assert.deepEqual(notices({ tag: '1', digest: 'sha256:dd' }), [{ repository: 'team/app', tag: '1' }]);
    assert.deepEqual(notices({ tag: '1', digest: `sha512:${'d'.repeat(128)}` }), [
      { repository: 'team/app', tag: '1' },
    ]);
    assert.deepEqual(notices({ tag: '1', digest: `${D}\n` }), [{ repository: 'team/app', tag: '1' }]);
    assert.deepEqual(notices({ digest: D }), [{ repository: 'team/app' }], 'a push by digest names no tag');
  });

  it('hands on only valid tags: others are skipped with a reason; a digest in the tag field looks at every tag', () => {
    const event = (tag: string) => ({ action: 'push', target: { repository: 'team/app', tag, digest: D } });
    const bad = ['1.0\u0000x', ' 1.0', '1.0 ', 'ｖ1', 'x'.repeat(100_000), '.hidden', '-rc', '1/2', ''];
    const parsed = parsePayload('distribution', { events: [event('1.0'), ...bad.map(event)] });
    assert.deepEqual(parsed.notices, [{ repository: 'team/app', tag: '1.0', digest: D }, { repository: 'team/app' }]);
    assert.equal(parsed.skipped?.length, bad.length - 1, 'an empty tag is no tag: the push by digest above');
    assert.ok(parsed.skipped.every((r) => r.length < 120 && r.startsWith('team/app: ')));
    // Harbor reports an artifact pushed by digest with the digest where the tag goes.
    const harbor = parsePayload('harbor', {
      type: 'PUSH_ARTIFACT',
      event_data: {
        repository: { repo_full_name: 'library/nginx' },
        resources: [{ digest: D, tag: D, resource_url: `harbor.example.com/library/nginx@${D}` }],
      },
    });
    assert.deepEqual(harbor.notices, [{ registry: 'harbor.example.com', repository: 'library/nginx' }]);
    assert.equal(harbor.skipped, undefined);
    const hub = parsePayload('dockerhub', { repository: { repo_name: 'team/app' }, push_data: { tag: 'a b' } });
    assert.deepEqual(hub.notices, []);
  });

  it('dockerhub: no digest, Docker Hub repository names', () => {
    assert.deepEqual(
      parsePayload('dockerhub', {
        push_data: { tag: 'latest', pusher: 'me' },
        repository: { repo_name: 'acme/app', name: 'app', namespace: 'acme' },
      }).notices,
      [{ registry: 'docker.io', repository: 'acme/app', tag: 'latest' }],
    );
  });

  it('quay: every updated tag', () => {
    assert.deepEqual(
      parsePayload('quay', {
        repository: 'acme/app',
        namespace: 'acme',
        name: 'app',
        docker_url: 'quay.io/acme/app',
        updated_tags: ['v1', 'latest'],
      }).notices,
      [
        { registry: 'quay.io', repository: 'acme/app', tag: 'v1' },
        { registry: 'quay.io', repository: 'acme/app', tag: 'latest' },
      ],
    );
  });

  it('github: package and registry_package events, container packages only, ping ignored', () => {
    const pkg = {
      name: 'storefront',
      namespace: 'acme',
      package_type: 'CONTAINER',
      package_version: {
        package_url: 'ghcr.io/acme/storefront:main',
        container_metadata: { tag: { name: 'main', digest: D } },
      },
    };
    const expected = [{ registry: 'ghcr.io', repository: 'acme/storefront', tag: 'main' }];
    assert.deepEqual(
      parsePayload('github', { action: 'published', registry_package: pkg }, 'registry_package').notices,
      expected,
    );
    assert.deepEqual(parsePayload('github', { action: 'published', package: pkg }, 'package').notices, expected);
    assert.deepEqual(
      parsePayload('github', { action: 'published', package: { ...pkg, package_type: 'npm' } }, 'package').notices,
      [],
    );
    assert.deepEqual(parsePayload('github', { zen: 'Keep it logically awesome.' }, 'ping').notices, []);
    const noUrl = {
      ...pkg,
      package_version: { container_metadata: { tag: { name: '2.0' } } },
      registry: { url: 'https://ghcr.io' },
    };
    assert.deepEqual(parsePayload('github', { package: noUrl }, 'package').notices, [
      { registry: 'ghcr.io', repository: 'acme/storefront', tag: '2.0' },
    ]);
  });

  it('github: the package_url quirks — a bare colon (untagged), capitals in the owner, encoded nested names', () => {
    const url = (package_url: string) =>
      parsePayload(
        'github',
        { action: 'published', registry_package: { package_type: 'container', package_version: { package_url } } },
        'registry_package',
      ).notices;
    assert.deepEqual(url('ghcr.io/acme/storefront:'), [{ registry: 'ghcr.io', repository: 'acme/storefront' }]);
    assert.deepEqual(url('ghcr.io/Acme-Org/StoreFront:V1.2'), [
      { registry: 'ghcr.io', repository: 'acme-org/storefront', tag: 'V1.2' },
    ]);
    assert.deepEqual(url('https://ghcr.io/acme/tools%2Fapp:1'), [
      { registry: 'ghcr.io', repository: 'acme/tools/app', tag: '1' },
    ]);
    const nested = {
      name: 'tools%2Fapp',
      namespace: 'Acme',
      package_type: 'container',
      package_version: { container_metadata: { tag: { name: '' } } },
    };
    assert.deepEqual(parsePayload('github', { package: nested }, 'package').notices, [
      { registry: 'ghcr.io', repository: 'acme/tools/app' },
    ]);
  });

  it('generic: one image or a list', () => {
    assert.deepEqual(parsePayload('generic', { image: 'registry.example.com/team/app:1.4' }).notices, [
      { registry: 'registry.example.com', repository: 'team/app', tag: '1.4' },
    ]);
    assert.deepEqual(parsePayload('generic', { images: ['node:22', 'ghcr.io/acme/x'] }).notices, [
      { registry: 'docker.io', repository: 'library/node', tag: '22' },
      { registry: 'ghcr.io', repository: 'acme/x' },
    ]);
  });

  const malformed: [string, unknown][] = [
    ['distribution', { events: 'nope' }],
    [
      'distribution',
      { events: [{ action: 'push', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json' } }] },
    ],
    [
      'distribution',
      {
        events: [
          {
            action: 'push',
            target: { repository: 'Team/App', mediaType: 'application/vnd.oci.image.manifest.v1+json' },
          },
        ],
      },
    ],
    ['acr', { action: 'push' }],
    ['harbor', { type: 'PUSH_ARTIFACT', event_data: { repository: {} } }],
    ['dockerhub', { push_data: {} }],
    ['quay', {}],
    ['github', { action: 'published' }],
    ['generic', {}],
    ['generic', { images: ['team/App'] }],
    ['generic', { images: Array.from({ length: 101 }, () => 'a') }],
    ['generic', null],
  ];
  for (const [format, body] of malformed) {
    it(`rejects a malformed ${format} payload: ${JSON.stringify(body).slice(0, 60)}`, () => {
      assert.throws(() => parsePayload(format as 'generic', body), PayloadError);
    });
  }
});

describe('webhook server', () => {
  const notices: PushNotice[] = [];
  const sink = {
    checkNow: (n: PushNotice) => {
      notices.push(n);
      return 1;
    },
  };
  let server: WebhookServer;
  let base: string;
  let leader = true;
  let now = 0;
  const metrics = createRegistry(false);
  // The follower's inbox: what it stored, or a failure to store.
  const stored: InboxEntry[] = [];
  let inboxDown = false;
  const inbox = {
    put: (entry: InboxEntry) => {
      if (inboxDown) return Promise.reject(new Error('the API server is unreachable'));
      stored.push(entry);
      return Promise.resolve();
    },
  };
  const receivers: Receiver[] = [
    {
      name: 'reg',
      format: 'distribution',
      registry: 'registry.internal:5000',
      auth: { type: 'bearer', token: () => 'bearer-secret' },
    },
    { name: 'harbor', format: 'harbor', auth: { type: 'basic', username: 'harbor', password: () => 'basic-secret' } },
    { name: 'acr', format: 'acr', auth: { type: 'header', header: 'X-Patchline-Token', value: () => 'header-secret' } },
    { name: 'gh', format: 'github', auth: { type: 'hmac', key: () => 'hmac-secret' } },
    { name: 'generic', format: 'generic', auth: { type: 'hmac', key: () => 'generic-secret' } },
    { name: 'hub', format: 'dockerhub', auth: { type: 'path', token: () => 'path-secret-0123456789' } },
  ];
  const push = {
    events: [
      {
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: 'team/app', tag: '1.4' },
      },
    ],
  };

  before(async () => {
    server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      receivers,
      sink,
      logger: silentLogger(),
      registry: metrics,
      maxBodyBytes: 4096,
      requestsPerSecond: 1,
      burst: 5,
      isLeader: () => leader,
      inbox,
      now: () => now,
    });
    const at = await server.start();
    base = `http://127.0.0.1:${at.port}`;
  });
  after(() => server.stop());
  beforeEach(() => {
    notices.length = 0;
    stored.length = 0;
    inboxDown = false;
    leader = true;
    now += 60_000; // refill rate-limit buckets between tests
  });

  const post = (path: string, body: string | object, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('accepts an authenticated notification and asks for a check, with the receiver registry', async () => {
    const res = await post('/hooks/reg', push, { authorization: 'Bearer bearer-secret' });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { notices: 1, matched: 1 });
    assert.deepEqual(notices, [{ registry: 'registry.internal:5000', repository: 'team/app', tag: '1.4' }]);
  });

  it('refuses a missing or wrong bearer token with 401 and asks for nothing', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: 'Basic YmVhcmVyLXNlY3JldA==' },
    ] as Record<string, string>[]) {
      const res = await post('/hooks/reg', push, headers);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    assert.equal(notices.length, 0);
  });

  it('checks basic credentials and static headers', async () => {
    const harbor = {
      type: 'PUSH_ARTIFACT',
      event_data: {
        repository: { repo_full_name: 'library/nginx' },
        resources: [{ tag: '1', resource_url: 'h.example.com/library/nginx:1' }],
      },
    };
    assert.equal(
      (
        await post('/hooks/harbor', harbor, {
          authorization: `Basic ${Buffer.from('harbor:basic-secret').toString('base64')}`,
        })
      ).status,
      202,
    );
    assert.equal(
      (await post('/hooks/harbor', harbor, { authorization: `Basic ${Buffer.from('harbor:nope').toString('base64')}` }))
        .status,
      401,
    );
    const acr = { action: 'push', target: { repository: 'shop/web', tag: '1' }, request: { host: 'shop.azurecr.io' } };
    assert.equal((await post('/hooks/acr', acr, { 'x-patchline-token': 'header-secret' })).status, 202);
    assert.equal((await post('/hooks/acr', acr, { 'x-patchline-token': 'header-secreT' })).status, 401);
  });

  it('verifies HMAC-SHA256 signatures over the exact body', async () => {
    const body = JSON.stringify({
      action: 'published',
      package: {
        name: 'app',
        namespace: 'acme',
        package_type: 'CONTAINER',
        package_version: { package_url: 'ghcr.io/acme/app:1' },
      },
    });
    const sign = (key: string, text: string) => `sha256=${createHmac('sha256', key).update(text).digest('hex')}`;
    assert.equal(
      (await post('/hooks/gh', body, { 'x-hub-signature-256': sign('hmac-secret', body), 'x-github-event': 'package' }))
        .status,
      202,
    );
    assert.equal((await post('/hooks/gh', body, { 'x-hub-signature-256': sign('other-key', body) })).status, 401);
    assert.equal(
      (await post('/hooks/gh', body + ' ', { 'x-hub-signature-256': sign('hmac-secret', body) })).status,
      401,
      'tampered body',
    );
    assert.equal((await post('/hooks/gh', body)).status, 401, 'no signature');
    const g = JSON.stringify({ image: 'registry.example.com/team/app:1.4' });
    assert.equal((await post('/hooks/generic', g, { 'x-patchline-signature': sign('generic-secret', g) })).status, 202);
  });

  it('takes a secret path token for senders without headers, and hides the receiver otherwise', async () => {
    const hub = { push_data: { tag: 'latest' }, repository: { repo_name: 'acme/app' } };
    assert.equal((await post('/hooks/hub/path-secret-0123456789', hub)).status, 202);
    assert.equal((await post('/hooks/hub/wrong-token', hub)).status, 404);
    assert.equal((await post('/hooks/hub', hub)).status, 404);
    assert.deepEqual(notices, [{ registry: 'docker.io', repository: 'acme/app', tag: 'latest' }]);
  });

  it('answers unknown receivers 404, other methods 405, malformed bodies 400', async () => {
    assert.equal((await post('/hooks/nobody', push)).status, 404);
    assert.equal((await post('/other', push)).status, 404);
    assert.equal((await fetch(`${base}/hooks/reg`)).status, 405);
    const bad = await post('/hooks/reg', '{not json', { authorization: 'Bearer bearer-secret' });
    assert.equal(bad.status, 400);
    const wrongShape = await post('/hooks/reg', { events: 'x' }, { authorization: 'Bearer bearer-secret' });
    assert.equal(wrongShape.status, 400);
    assert.match(((await wrongShape.json()) as { error: string }).error, /not a distribution notification/);
  });

  it('answers a malformed percent-escape in the path 400, before anything else, whatever the route', async () => {
    for (const path of ['/hooks/%ZZ', '/hooks/reg/%E0%A4%A', '/hooks/hub/%', '/callbacks/builds/%C0']) {
      const res = await post(path, push, { authorization: 'Bearer bearer-secret' });
      assert.equal(res.status, 400, path);
      assert.deepEqual(await res.json(), { error: 'malformed request path' });
    }
    // A well-formed escape still names its receiver (and a path token is compared decoded).
    assert.equal((await post('/hooks/%72eg', push, { authorization: 'Bearer bearer-secret' })).status, 202);
    assert.equal(
      (await post('/hooks/hub/path-secret-%30123456789', { repository: { repo_name: 'a/b' }, push_data: { tag: '1' } }))
        .status,
      202,
    );
  });

  it('refuses oversized bodies with 413', async () => {
    const res = await post(
      '/hooks/reg',
      { events: [], pad: 'x'.repeat(10_000) },
      { authorization: 'Bearer bearer-secret' },
    );
    assert.equal(res.status, 413);
  });

  it('rate-limits each receiver with 429 and Retry-After', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 8; i++)
      codes.push((await post('/hooks/reg', push, { authorization: 'Bearer bearer-secret' })).status);
    assert.deepEqual(codes, [202, 202, 202, 202, 202, 429, 429, 429]);
    const limited = await post('/hooks/reg', push, { authorization: 'Bearer bearer-secret' });
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(
      (
        await post(
          '/hooks/acr',
          { action: 'push', target: { repository: 'a/b' } },
          { 'x-patchline-token': 'header-secret' },
        )
      ).status,
      202,
      'other receivers unaffected',
    );
  });

  it('authenticates before rate-limiting: a forged flood leaves the real sender its budget', async () => {
    const forged = await Promise.all(
      Array.from({ length: 50 }, () => post('/hooks/reg', push, { authorization: 'Bearer forged' })),
    );
    assert.deepEqual([...new Set(forged.map((r) => r.status))], [401]);
    const signed = (body: string) => ({
      'x-hub-signature-256': `sha256=${createHmac('sha256', 'hmac-secret').update(body).digest('hex')}`,
      'x-github-event': 'ping',
    });
    const forgedSigned = await Promise.all(
      Array.from({ length: 20 }, () =>
        post('/hooks/gh', '{}', { 'x-hub-signature-256': 'sha256=00', 'x-github-event': 'ping' }),
      ),
    );
    assert.deepEqual([...new Set(forgedSigned.map((r) => r.status))], [401]);
    assert.equal((await post('/hooks/reg', push, { authorization: 'Bearer bearer-secret' })).status, 202);
    assert.equal((await post('/hooks/gh', '{"zen":"x"}', signed('{"zen":"x"}'))).status, 202);
    assert.equal(notices.length, 1);
  });

  it('on a replica that does not lead, authenticates, parses and stores the notices for the leader', async () => {
    leader = false;
    const res = await post('/hooks/reg', push, { authorization: 'Bearer bearer-secret' });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { notices: 1, queued: true });
    assert.deepEqual(stored, [
      {
        kind: 'notices',
        receiver: 'reg',
        notices: [{ registry: 'registry.internal:5000', repository: 'team/app', tag: '1.4' }],
      },
    ]);
    assert.equal(notices.length, 0, 'a follower checks nothing itself');
    // Refused exactly as the leader refuses: nothing forged or malformed is stored.
    assert.equal((await post('/hooks/reg', push, { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await post('/hooks/reg', '{"events": 3', { authorization: 'Bearer bearer-secret' })).status, 400);
    // A delivery with no push in it (a pull) needs no leader.
    const pull = { events: [{ action: 'pull', target: { repository: 'team/app', tag: '1.4' } }] };
    assert.equal((await post('/hooks/reg', pull, { authorization: 'Bearer bearer-secret' })).status, 202);
    assert.equal(stored.length, 1);
    // What the leader hands on from the inbox reaches the watcher as a direct delivery does.
    const entry = stored[0]!;
    assert.equal(entry.kind, 'notices');
    if (entry.kind === 'notices') assert.equal(server.deliver(entry.receiver, entry.notices), 1);
    assert.deepEqual(notices, [{ registry: 'registry.internal:5000', repository: 'team/app', tag: '1.4' }]);
  });

  it('on a replica that does not lead and cannot store, answers 503 with Retry-After', async () => {
    leader = false;
    inboxDown = true;
    const res = await post('/hooks/reg', push, { authorization: 'Bearer bearer-secret' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.equal(notices.length, 0);
  });

  it('answers Event Grid subscription validation on a replica that does not lead', async () => {
    leader = false;
    const res = await post(
      '/hooks/acr',
      [{ eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'code-7' } }],
      { 'x-patchline-token': 'header-secret' },
    );
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { validationResponse: 'code-7' });
    assert.equal(stored.length, 0);
  });

  it('answers Event Grid subscription validation', async () => {
    const res = await post(
      '/hooks/acr',
      [{ eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'code-42' } }],
      {
        'x-patchline-token': 'header-secret',
      },
    );
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { validationResponse: 'code-42' });
  });

  it('counts requests by receiver and status', async () => {
    const text = await metrics.getSingleMetricAsString('patchline_webhook_requests_total');
    assert.match(text, /receiver="reg",code="401"/);
    assert.match(text, /receiver="reg",code="202"/);
  });
});
