// A small token service for the registry's token auth (docker token spec): GET with basic
// credentials or anonymously, POST with a refresh token (OAuth2 grant_type=refresh_token).
// Tokens are JWTs signed RS256, with the signing certificate in x5c, which the registry
// checks against its rootcertbundle. Users get pull and push on every repository;
// anonymous callers get pull on the public repositories only.
import { execFileSync } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TokenRequestRecord {
  method: string;
  user: string;
  scopes: string[];
}

export interface TokenIssuerOptions {
  users: Record<string, string>;
  refreshTokens?: Record<string, string>; // token -> user
  publicRepositories?: string[];
  service?: string;
  issuer?: string;
  expiresInSeconds?: number;
}

export class TokenIssuer {
  readonly service: string;
  readonly issuer: string;
  readonly requests: TokenRequestRecord[] = [];
  readonly certFile: string;
  private readonly keyPem: string;
  private readonly certDer: string;
  private readonly options: TokenIssuerOptions;
  private server: Server | undefined;
  realm = '';

  constructor(options: TokenIssuerOptions) {
    this.options = options;
    this.service = options.service ?? 'patchline-test-registry';
    this.issuer = options.issuer ?? 'patchline-test-issuer';
    const dir = mkdtempSync(join(tmpdir(), 'patchline-issuer-'));
    const key = join(dir, 'key.pem');
    this.certFile = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        this.certFile,
        '-days',
        '1',
        '-subj',
        `/CN=${this.issuer}`,
      ],
      {
        stdio: 'ignore',
      },
    );
    this.keyPem = readFileSync(key, 'utf8');
    this.certDer = new X509Certificate(readFileSync(this.certFile)).raw.toString('base64');
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ({ status, body }) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.realm = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/token`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? '/', 'http://issuer');
    let user = '';
    let scopes: string[];
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      if (form.get('grant_type') !== 'refresh_token') return { status: 400, body: { error: 'unsupported_grant_type' } };
      const owner = this.options.refreshTokens?.[form.get('refresh_token') ?? ''];
      if (!owner) return { status: 401, body: { error: 'invalid_grant' } };
      user = owner;
      scopes = form.getAll('scope');
    } else {
      const auth = req.headers.authorization ?? '';
      if (auth.startsWith('Basic ')) {
        const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        if (!u || this.options.users[u] !== p.join(':'))
          return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED' }] } };
        user = u;
      }
      scopes = url.searchParams.getAll('scope');
    }
    this.requests.push({ method: req.method ?? 'GET', user, scopes });
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || !name) return [];
      const wanted = (actions ?? '').split(',').filter(Boolean);
      const granted = user
        ? wanted
        : this.options.publicRepositories?.includes(name)
          ? wanted.filter((a) => a === 'pull')
          : [];
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = this.options.expiresInSeconds ?? 300;
    const token = this.sign({
      iss: this.issuer,
      sub: user,
      aud: this.service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    return req.method === 'POST'
      ? { status: 200, body: { access_token: token, expires_in: expiresIn } }
      : {
          status: 200,
          body: { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() },
        };
  }

  private sign(claims: object): string {
    const header = { alg: 'RS256', typ: 'JWT', x5c: [this.certDer] };
    const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${enc(header)}.${enc(claims)}`;
    const signature = createSign('RSA-SHA256').update(input).sign(this.keyPem).toString('base64url');
    return `${input}.${signature}`;
  }
}
