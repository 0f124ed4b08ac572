// The Sigstore trust root from a TUF repository (a private mirror, as an air-gapped cluster
// or a private Sigstore runs one), through @sigstore/tuf: signed metadata checked against the
// seeded root, the trusted root fetched as a target, cached, and updated when the repository
// publishes a new one; a tampered target is refused and the last good root keeps serving.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustedRootSource } from '../../src/verify/trusted-root.ts';
import { SigstoreFixtures } from '../support/sigstore.ts';
import { TufRepository } from '../support/tuf-repository.ts';

describe('Sigstore trust root from a TUF repository', () => {
  let repo: TufRepository;
  let first: SigstoreFixtures;
  const dir = mkdtempSync(join(tmpdir(), 'patchline-tuf-'));

  before(async () => {
    repo = new TufRepository();
    first = await SigstoreFixtures.create();
    repo.publish(first.trustedRoot());
    await repo.start();
  });
  after(() => repo.stop());

  const tlogKey = (root: { tlogs: { publicKey?: { rawBytes?: Uint8Array } }[] }): string =>
    Buffer.from(root.tlogs[0]?.publicKey?.rawBytes ?? []).toString('base64');

  it('loads the trusted root the repository publishes, and follows an update', async () => {
    let now = Date.parse('2026-11-22T00:00:00Z');
    const source = new TrustedRootSource(
      { tuf: { mirrorURL: repo.url, rootFile: repo.writeRoot(dir), cachePath: join(dir, 'cache') } },
      () => now,
    );
    const root = await source.get();
    assert.equal(
      tlogKey(root),
      (first.trustedRoot().tlogs as { publicKey: { rawBytes: string } }[])[0]!.publicKey.rawBytes,
    );
    assert.ok(repo.requests.includes('/timestamp.json') && repo.requests.includes('/targets/trusted_root.json'));

    // Asked again within the day: from memory, no request.
    const seen = repo.requests.length;
    assert.strictEqual(await source.get(), root);
    assert.equal(repo.requests.length, seen);

    // The repository rotates its trust root; a day later the operator has the new one.
    const second = await SigstoreFixtures.create();
    repo.publish(second.trustedRoot());
    now += 25 * 3600_000;
    const updated = await source.get();
    assert.equal(
      tlogKey(updated),
      (second.trustedRoot().tlogs as { publicKey: { rawBytes: string } }[])[0]!.publicKey.rawBytes,
    );
  });

  it('refuses a target that does not match the signed metadata, and keeps serving the last good root', async () => {
    let now = Date.parse('2026-11-22T00:00:00Z');
    const cacheDir = mkdtempSync(join(tmpdir(), 'patchline-tuf-cache-'));
    const good = await SigstoreFixtures.create();
    repo.publish(good.trustedRoot());
    const source = new TrustedRootSource(
      { tuf: { mirrorURL: repo.url, rootFile: repo.writeRoot(dir), cachePath: cacheDir } },
      () => now,
    );
    const root = await source.get();
    // A new root is announced, but the mirror serves another file (swapped without the key).
    const evil = await SigstoreFixtures.create();
    repo.publish((await SigstoreFixtures.create()).trustedRoot());
    repo.files.set('/targets/trusted_root.json', Buffer.from(JSON.stringify(evil.trustedRoot())));
    now += 25 * 3600_000;
    assert.strictEqual(await source.get(), root, 'the last good root');

    // A fresh operator (no root in memory, an empty cache) has nothing good to fall back on.
    const fresh = new TrustedRootSource({
      tuf: {
        mirrorURL: repo.url,
        rootFile: repo.writeRoot(dir),
        cachePath: mkdtempSync(join(tmpdir(), 'patchline-tuf-')),
      },
    });
    await assert.rejects(fresh.get(), /cannot load the Sigstore trust root from TUF repository/);
  });
});
