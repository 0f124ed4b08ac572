// Who an image runs as, read from its config in a real registry (verify.runAsNonRoot): every
// form of config.User, and a multi-platform image's (its linux/amd64 image's).
import assert from 'node:assert/strict';
import { RegistryFacts } from '../../src/controllers/registry-facts.ts';
import { anonymousSource } from '../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { effectiveUser } from '../../src/verify/run-as-user.ts';
import { OciPusher } from '../support/oci-push.ts';
import { startRegistry, type RegistryServer } from '../support/registry-server.ts';

describe('the user an image runs as, from a real registry', () => {
  let registry: RegistryServer;
  let client: RegistryClient;
  let facts: RegistryFacts;
  let pusher: OciPusher;

  before(async () => {
    registry = await startRegistry();
    pusher = new OciPusher(registry.url);
    client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
    facts = new RegistryFacts(client);
  });
  after(async () => {
    await client.close();
    await registry.stop();
  });

  it('reads config.User of each form, and judges it as the kubelet would', async () => {
    const cases: [string | undefined, string, boolean | undefined][] = [
      [undefined, '', true],
      ['', '', true],
      ['root', 'root', true],
      ['0:0', '0:0', true],
      ['65532:65532', '65532:65532', false],
      ['1000', '1000', false],
      ['nginx', 'nginx', undefined],
    ];
    for (const [i, [user, read, root]] of cases.entries()) {
      const image = await pusher.pushImage('team/users', `u${i}`, {
        seed: `user-${i}`,
        ...(user !== undefined ? { user } : {}),
      });
      const ref = parseReference(`${registry.host}/team/users`);
      const got = await facts.user(ref, image.digest, anonymousSource);
      assert.equal(got, read, String(user));
      assert.equal(effectiveUser(got).root, root, String(user));
    }
  });

  it("reads a multi-platform image's user from its linux/amd64 image", async () => {
    const image = await pusher.pushImage('team/users', 'multi', {
      seed: 'user-multi',
      platforms: ['linux/arm64', 'linux/amd64'],
      user: '10001',
    });
    assert.equal(image.children.length, 2);
    assert.equal(
      await facts.user(parseReference(`${registry.host}/team/users`), image.digest, anonymousSource),
      '10001',
    );
  });
});
