// notation-sign, the test tree's Notary Project signing tool (test/notation, built by its
// build.sh into .cache/bin from the notation-go library): test certificates, and signatures
// pushed to a test registry as `notation sign` pushes them.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './fixtures.ts';

const NOTATION_SIGN = join(ROOT, '.cache', 'bin', 'notation-sign');
const run = promisify(execFile);

/** The signers `notation-sign certs` makes (see test/notation/main.go). */
export type TestSigner = 'leaf' | 'rsa' | 'other' | 'revoked' | 'untrusted';

export interface SignOptions {
  envelope?: 'jws' | 'cose';
  /** Go duration, such as 1h. */
  expiry?: string;
  signingTime?: Date;
  /** Sign this digest, but attach the signature to the image. */
  signDigest?: string;
  tamper?: boolean;
}

export class NotaryFixtures {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<NotaryFixtures> {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-notary-'));
    await run(NOTATION_SIGN, ['certs', dir]);
    return new NotaryFixtures(dir);
  }

  /** The trusted root (PEM). */
  get rootPem(): string {
    return readFileSync(join(this.dir, 'ca.pem'), 'utf8');
  }

  /** The signing CA's CRL (PEM), which lists the `revoked` signer. */
  get crlPem(): string {
    return readFileSync(join(this.dir, 'ca.crl'), 'utf8');
  }

  /** Signs `host/repo@digest`; returns the signature manifest's digest. */
  async sign(reference: string, signer: TestSigner, options: SignOptions = {}): Promise<string> {
    const args = ['sign', '--reference', reference, '--key', join(this.dir, `${signer}.key`)];
    args.push('--chain', join(this.dir, `${signer}.pem`), '--envelope', options.envelope ?? 'jws');
    if (options.expiry) args.push('--expiry', options.expiry);
    if (options.signingTime) args.push('--signing-time', options.signingTime.toISOString().replace(/\.\d+Z$/, 'Z'));
    if (options.signDigest) args.push('--sign-digest', options.signDigest);
    if (options.tamper) args.push('--tamper');
    const { stdout } = await run(NOTATION_SIGN, args);
    return stdout.trim();
  }
}
