// A TUF repository served on 127.0.0.1, made at test time, publishing a Sigstore
// trusted_root.json as Sigstore's own TUF repository does: root, timestamp, snapshot and
// targets metadata (TUF spec 1.0), signed with one ed25519 key each role shares, canonical JSON
// signing, no consistent snapshots. `publish` puts out a new trusted root (new versions of
// targets, snapshot and timestamp), as a trust-root rotation would.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { json } from '@sigstore/core';

const EXPIRES = '2099-01-01T00:00:00Z';

export class TufRepository {
  readonly files = new Map<string, Buffer>();
  private readonly privateKey;
  private readonly keyId: string;
  private readonly keyEntry: object;
  private server: Server | undefined;
  private version = 0;
  url = '';
  requests: string[] = [];

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    this.privateKey = privateKey;
    const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex');
    this.keyEntry = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw } };
    this.keyId = createHash('sha256').update(json.canonicalize(this.keyEntry)).digest('hex');
  }

  private signed(role: string, body: Record<string, unknown>, version: number): Buffer {
    const signed = { _type: role, spec_version: '1.0.31', version, expires: EXPIRES, ...body };
    const sig = sign(null, Buffer.from(json.canonicalize(signed)), this.privateKey).toString('hex');
    return Buffer.from(JSON.stringify({ signed, signatures: [{ keyid: this.keyId, sig }] }));
  }

  /** The initial root.json, written where a client is seeded from (its rootFile). */
  writeRoot(dir: string): string {
    const role = { keyids: [this.keyId], threshold: 1 };
    const root = this.signed(
      'root',
      {
        consistent_snapshot: false,
        keys: { [this.keyId]: this.keyEntry },
        roles: { root: role, timestamp: role, snapshot: role, targets: role },
      },
      1,
    );
    this.files.set('/1.root.json', root);
    const path = join(dir, 'root.json');
    writeFileSync(path, root);
    return path;
  }

  /** Publishes a trusted root as target trusted_root.json, in a new version of the metadata. */
  publish(trustedRoot: object): void {
    const v = ++this.version;
    const target = Buffer.from(JSON.stringify(trustedRoot));
    this.files.set('/targets/trusted_root.json', target);
    const targets = this.signed(
      'targets',
      {
        targets: {
          'trusted_root.json': {
            length: target.length,
            hashes: { sha256: createHash('sha256').update(target).digest('hex') },
          },
        },
      },
      v,
    );
    this.files.set('/targets.json', targets);
    this.files.set('/snapshot.json', this.signed('snapshot', { meta: { 'targets.json': { version: v } } }, v));
    this.files.set('/timestamp.json', this.signed('timestamp', { meta: { 'snapshot.json': { version: v } } }, v));
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      this.requests.push(path);
      const body = this.files.get(path);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
