import assert from 'node:assert/strict';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustRootError, TrustedRootSource } from '../../../src/verify/trusted-root.ts';
import { SigstoreFixtures } from '../../support/sigstore.ts';

describe('Sigstore trusted root source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-trust-'));

  it('reads a trusted_root.json, and re-reads it when the file changes', async () => {
    const path = join(dir, 'trusted_root.json');
    const first = await SigstoreFixtures.create();
    writeFileSync(path, JSON.stringify(first.trustedRoot()));
    const source = new TrustedRootSource({ file: path });
    const a = await source.get();
    assert.equal(a.tlogs.length, 1);
    assert.strictEqual(await source.get(), a, 'cached while the file is unchanged');
    const second = await SigstoreFixtures.create();
    writeFileSync(path, JSON.stringify(second.trustedRoot()));
    utimesSync(path, new Date(), new Date(Date.now() + 5_000));
    const b = await source.get();
    assert.notDeepEqual(b.tlogs[0]?.publicKey?.rawBytes, a.tlogs[0]?.publicKey?.rawBytes);
  });

  it('says clearly what is wrong with a missing or malformed file', async () => {
    await assert.rejects(new TrustedRootSource({ file: join(dir, 'nope.json') }).get(), /cannot read the trusted root/);
    writeFileSync(join(dir, 'bad.json'), '{"mediaType": "application/json"}');
    await assert.rejects(
      new TrustedRootSource({ file: join(dir, 'bad.json') }).get(),
      (err: unknown) => err instanceof TrustRootError && /is not a Sigstore trusted root/.test(err.message),
    );
  });

  it('reports an unreachable TUF mirror as a trust-root error, and does not retry it at once', async () => {
    const source = new TrustedRootSource({
      tuf: { mirrorURL: 'http://127.0.0.1:9', cachePath: join(dir, 'tuf') },
    });
    const first = await source.get().catch((err: unknown) => err);
    assert.match(String(first), /cannot load the Sigstore trust root from TUF repository http:\/\/127\.0\.0\.1:9/);
    const second = await source.get().catch((err: unknown) => err);
    assert.strictEqual(second, first, 'the failure is remembered for a minute, not retried on every reconcile');
  });
});
