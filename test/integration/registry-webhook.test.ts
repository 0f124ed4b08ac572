// The registry's own notifications drive the watcher end to end: a push to a real registry
// makes it POST to Patchline's webhook receiver, which asks the watcher to look now; the
// watcher's HEAD finds the new digest and tells the subscriber, long before the poll would.
// A forged notification gets a 401, and even an authenticated one cannot inject a digest.
import assert from 'node:assert/strict';
import { anonymousSource } from '../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { DigestWatcher, type DigestEvent } from '../../src/registry/watcher.ts';
import { WebhookServer } from '../../src/registry/webhooks/server.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { waitFor } from '../support/manual-clock.ts';
import { OciPusher } from '../support/oci-push.ts';
import { freePort, startRegistry, type RegistryServer } from '../support/registry-server.ts';

const TOKEN = 'registry-notification-token';
const HOUR = 3_600_000;

describe('registry notifications drive the digest watcher', () => {
  let registry: RegistryServer;
  let webhooks: WebhookServer;
  let client: RegistryClient;
  let watcher: DigestWatcher;
  let push: OciPusher;
  let checks = 0;
  let webhookUrl: string;
  const received: string[] = [];

  before(async () => {
    const port = await freePort();
    webhookUrl = `http://127.0.0.1:${port}/hooks/local`;
    registry = await startRegistry({
      notifications: [{ url: webhookUrl, headers: { Authorization: `Bearer ${TOKEN}` } }],
    });
    client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
    watcher = new DigestWatcher({
      client: {
        head: (ref, source, signal) => {
          checks++;
          return client.head(ref, source, signal);
        },
      },
      logger: silentLogger(),
      minTriggerGapMs: 200,
    });
    watcher.start();
    webhooks = new WebhookServer({
      host: '127.0.0.1',
      port,
      receivers: [
        {
          name: 'local',
          format: 'distribution',
          registry: registry.host,
          auth: { type: 'bearer', token: () => TOKEN },
        },
      ],
      sink: {
        checkNow: (n) => {
          received.push(`${n.repository}:${n.tag ?? ''}`);
          return watcher.checkNow(n);
        },
      },
      logger: silentLogger(),
    });
    await webhooks.start();
    push = new OciPusher(registry.url);
  });

  after(async () => {
    watcher.stop();
    await webhooks.stop();
    await client.close();
    await registry.stop();
  });

  it('sees a push within moments, by webhook, while the poll is an hour away', async () => {
    const first = await push.pushImage('team/app', '1.0', { seed: 'first' });
    const events: DigestEvent[] = [];
    watcher.subscribe(
      { reference: parseReference(`${registry.host}/team/app:1.0`), source: anonymousSource, intervalMs: HOUR },
      (e) => events.push(e),
    );
    await waitFor(() => events.length === 1, 'initial digest');
    assert.equal(events[0]?.digest, first.digest);

    const started = Date.now();
    const second = await push.pushImage('team/app', '1.0', { seed: 'second' });
    await waitFor(() => events.length === 2, 'new digest by webhook', 15_000);
    const latency = Date.now() - started;
    assert.equal(events[1]?.digest, second.digest);
    assert.equal(events[1]?.previousDigest, first.digest);
    assert.ok(latency < 10_000, `detected in ${latency} ms`);
  });

  it('ignores notices for repositories nobody follows', async () => {
    const before = checks;
    await push.pushImage('team/unwatched', 'x');
    await waitFor(() => received.includes('team/unwatched:x'), 'the notification arrived');
    assert.equal(checks, before, 'no HEAD for a repository nobody follows');
  });

  it('refuses a forged notification, and an authenticated one cannot inject a digest', async () => {
    const events: DigestEvent[] = [];
    watcher.subscribe(
      { reference: parseReference(`${registry.host}/team/app:1.0`), source: anonymousSource, intervalMs: HOUR },
      (e) => events.push(e),
    );
    await waitFor(() => events.length === 1, 'known digest');
    const forged = {
      events: [
        {
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            repository: 'team/app',
            tag: '1.0',
            digest: `sha256:${'6'.repeat(64)}`,
          },
        },
      ],
    };
    const refused = await fetch(webhookUrl, {
      method: 'POST',
      headers: { authorization: 'Bearer guessed' },
      body: JSON.stringify(forged),
    });
    assert.equal(refused.status, 401);
    const before = checks;
    const accepted = await fetch(webhookUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(forged),
    });
    assert.equal(accepted.status, 202);
    await waitFor(() => checks > before, 'the registry is asked');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(events.length, 1, 'the registry said nothing changed; the forged digest went nowhere');
  });
});
