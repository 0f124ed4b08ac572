// A working copy of one GitOps repository, driven through the git CLI (the image carries git
// and OpenSSH; docs/decisions.md says why): shallow, single-branch fetches; one commit; a push
// that never forces the branch users read from, and force-with-lease for a push branch.
//
// Credentials never reach a command line (other users of the host could read it there): HTTPS
// headers go through GIT_CONFIG_* environment variables, scoped to the repository's origin;
// keys, known_hosts and CA bundles are files of mode 0600 in the workspace's private folder.
// SSH checks the host key against the known_hosts given, and never trusts on first use.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface GitCredentials {
  /** HTTPS basic authentication (a token may be the password). */
  username?: string;
  password?: string;
  /** HTTPS bearer token (Authorization: Bearer). */
  bearerToken?: string;
  /** PEM bundle of CAs trusted for the HTTPS server. */
  caCert?: string;
  /** SSH: an OpenSSH private key, and the known_hosts lines of the server (required). */
  identity?: string;
  knownHosts?: string;
}

/** How commits are signed: an SSH key (git's ssh format) or an OpenPGP key (gpg). */
export type CommitSigning =
  { format: 'ssh'; identity: string } | { format: 'openpgp'; armoredKey: string; passphrase?: string };

export interface WorkspaceOptions {
  /** A private folder for this repository's working copy and credential files. */
  dir: string;
  url: string;
  credentials: GitCredentials;
  /** Each git command's time limit. */
  timeoutMs?: number;
  /** Sign every commit with this key. */
  signing?: CommitSigning;
}

export interface Author {
  name: string;
  email: string;
}

export type PushResult = { kind: 'pushed'; sha: string } | { kind: 'rejected'; reason: string };

export class GitError extends Error {
  /** The remote refused the credentials, or the host key: retrying will not help. */
  readonly auth: boolean;

  constructor(message: string, auth = false) {
    super(message);
    this.name = 'GitError';
    this.auth = auth;
  }
}

const AUTH_FAILURE =
  /Authentication failed|could not read Username|HTTP 401|HTTP 403|Permission denied \(publickey|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i;

/** Whether a URL is reached over SSH: ssh://… or scp-like user@host:path. */
export function isSshUrl(url: string): boolean {
  return url.startsWith('ssh://') || /^[\w.-]+@[\w.-]+:(?!\/\/)/.test(url);
}

export class GitWorkspace {
  readonly dir: string;
  private readonly repo: string;
  private readonly secrets: string;
  private readonly options: WorkspaceOptions;
  private readonly env: NodeJS.ProcessEnv;
  private signing: Promise<string[]> | undefined;

  constructor(options: WorkspaceOptions) {
    this.options = options;
    this.dir = options.dir;
    this.repo = join(options.dir, 'repo');
    this.secrets = join(options.dir, 'secrets');
    this.env = this.environment();
  }

  /** The environment of every git command: no user or system config, no prompts, credentials. */
  private environment(): NodeJS.ProcessEnv {
    mkdirSync(this.secrets, { recursive: true, mode: 0o700 });
    chmodSync(this.secrets, 0o700);
    const c = this.options.credentials;
    const config: [string, string][] = [];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: this.secrets,
      LC_ALL: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: 'true',
    };
    if (isSshUrl(this.options.url)) {
      if (!c.knownHosts)
        throw new GitError('an SSH repository needs known_hosts: host keys are never trusted on first use', true);
      const known = this.secretFile('known_hosts', c.knownHosts);
      const parts = ['ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes'];
      parts.push('-o', `UserKnownHostsFile=${known}`, '-o', 'GlobalKnownHostsFile=/dev/null');
      if (c.identity)
        parts.push('-o', 'IdentitiesOnly=yes', '-i', this.secretFile('identity', ensureNewline(c.identity)));
      env.GIT_SSH_COMMAND = parts.map(shellQuote).join(' ');
    } else {
      const origin = new URL(this.options.url).origin;
      if (c.bearerToken) config.push([`http.${origin}/.extraHeader`, `Authorization: Bearer ${c.bearerToken}`]);
      else if (c.password !== undefined || c.username !== undefined) {
        const basic = Buffer.from(`${c.username ?? 'git'}:${c.password ?? ''}`).toString('base64');
        config.push([`http.${origin}/.extraHeader`, `Authorization: Basic ${basic}`]);
      }
      if (c.caCert) config.push(['http.sslCAInfo', this.secretFile('ca.crt', c.caCert)]);
    }
    env.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([key, value], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = key;
      env[`GIT_CONFIG_VALUE_${i}`] = value;
    });
    return env;
  }

  private secretFile(name: string, content: string): string {
    const path = join(this.secrets, name);
    writeFileSync(path, content, { mode: 0o600 });
    chmodSync(path, 0o600);
    return path;
  }

  /** Runs git in the working copy; a failure says what git said, credentials not included. */
  async git(
    args: string[],
    options: { allowFailure?: boolean } = {},
  ): Promise<{ stdout: string; stderr: string; ok: boolean }> {
    try {
      const { stdout, stderr } = await run('git', args, {
        cwd: this.repo,
        env: this.env,
        timeout: this.options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      return { stdout, stderr, ok: true };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; killed?: boolean; message?: string };
      if (options.allowFailure) return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', ok: false };
      const all = (e.stderr || e.message || '').trim();
      if (e.killed) throw new GitError(`git ${args[0] ?? ''} timed out`);
      throw new GitError(`git ${args[0] ?? ''}: ${summary(all)}`, AUTH_FAILURE.test(all));
    }
  }

  /**
   * The working copy at the remote head of `branch` (a depth-1 fetch into a copy kept between
   * runs); returns that head's SHA. Local changes from an earlier run are thrown away.
   */
  async checkout(branch: string): Promise<string> {
    await this.ensureRepository();
    await this.fetch(branch, 1);
    await this.git(['checkout', '-q', '-f', '-B', 'patchline-work', `refs/remotes/origin/${branch}`]);
    await this.git(['reset', '-q', '--hard', `refs/remotes/origin/${branch}`]);
    await this.git(['clean', '-q', '-f', '-d', '-x']);
    return (await this.git(['rev-parse', 'HEAD'])).stdout.trim();
  }

  /** An empty repository with the remote, once per working copy. */
  private async ensureRepository(): Promise<void> {
    if (!existsSync(join(this.repo, '.git'))) {
      mkdirSync(this.repo, { recursive: true });
      await this.git(['init', '-q']);
      await this.git(['remote', 'add', 'origin', this.options.url]);
    } else {
      await this.git(['remote', 'set-url', 'origin', this.options.url]);
    }
  }

  /** Fetches `branch` to refs/remotes/origin/<branch>, `depth` commits deep. */
  async fetch(branch: string, depth: number): Promise<void> {
    const result = await this.git(
      ['fetch', '-q', '--no-tags', `--depth=${depth}`, 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`],
      { allowFailure: true },
    );
    if (result.ok) return;
    const said = result.stderr.trim();
    if (/couldn't find remote ref|not our ref|no such ref/i.test(said))
      throw new GitError(`branch ${branch} does not exist in ${this.options.url}`);
    throw new GitError(`git fetch: ${summary(said)}`, AUTH_FAILURE.test(said));
  }

  /** The SHA the remote's `branch` points at; undefined when it does not exist. */
  async remoteHead(branch: string): Promise<string | undefined> {
    const { stdout } = await this.git(['ls-remote', 'origin', `refs/heads/${branch}`]);
    return stdout.split('\t')[0]?.trim() || undefined;
  }

  /** Files of the working copy under `paths` (relative to the repository root). */
  async files(paths: readonly string[]): Promise<string[]> {
    const { stdout } = await this.git(['ls-files', '-z', '--', ...(paths.length > 0 ? paths : ['.'])]);
    return stdout.split('\0').filter(Boolean);
  }

  read(file: string): string {
    return readFileSync(join(this.repo, file), 'utf8');
  }

  exists(file: string): boolean {
    return existsSync(join(this.repo, file));
  }

  write(file: string, text: string): void {
    mkdirSync(dirname(join(this.repo, file)), { recursive: true });
    writeFileSync(join(this.repo, file), text);
  }

  /**
   * The configuration that signs commits, set up once per working copy: SSH keys are signed by
   * ssh-keygen (git's ssh format); OpenPGP keys are imported into a private GnuPG home, and a
   * passphrase is given to gpg from a file, never on a command line.
   */
  private async signingConfig(): Promise<string[]> {
    const signing = this.options.signing;
    if (!signing) return [];
    if (signing.format === 'ssh') {
      const key = this.secretFile('signing-key', ensureNewline(signing.identity));
      return ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key}`, '-c', 'commit.gpgsign=true'];
    }
    const home = join(this.secrets, 'gnupg');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chmodSync(home, 0o700);
    const gpgArgs = ['--homedir', home, '--batch', '--pinentry-mode', 'loopback'];
    const passphrase = signing.passphrase !== undefined ? this.secretFile('passphrase', signing.passphrase) : undefined;
    if (passphrase) gpgArgs.push('--passphrase-file', passphrase);
    const keyFile = this.secretFile('signing-key.asc', signing.armoredKey);
    await run('gpg', [...gpgArgs, '--import', keyFile], {
      env: this.env,
      timeout: this.options.timeoutMs ?? 120_000,
    }).catch((err: unknown) => {
      throw new GitError(
        `importing the OpenPGP signing key: ${summary((err as { stderr?: string }).stderr ?? String(err))}`,
        true,
      );
    });
    const { stdout } = await run('gpg', [...gpgArgs, '--list-secret-keys', '--with-colons'], { env: this.env });
    const fingerprint = /^fpr:+([0-9A-F]{40})/m.exec(stdout)?.[1];
    if (!fingerprint) throw new GitError('the OpenPGP signing key has no secret key', true);
    // git runs gpg.program with its own arguments: a wrapper adds the home and the passphrase.
    const wrapper = join(this.secrets, 'gpg');
    writeFileSync(wrapper, `#!/bin/sh\nexec gpg ${gpgArgs.map(shellQuote).join(' ')} "$@"\n`, { mode: 0o700 });
    return ['-c', `gpg.program=${wrapper}`, '-c', `user.signingkey=${fingerprint}`, '-c', 'commit.gpgsign=true'];
  }

  /** Commits every change of the working copy; returns the new commit's SHA. */
  async commit(message: string, author: Author, at: Date): Promise<string> {
    await this.git(['add', '-A']);
    const date = at.toISOString();
    this.signing ??= this.signingConfig();
    const signing = await this.signing;
    await this.run([...signing, 'commit', '-q', '--no-verify', '-F', '-'], message, {
      GIT_AUTHOR_NAME: author.name,
      GIT_AUTHOR_EMAIL: author.email,
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_NAME: author.name,
      GIT_COMMITTER_EMAIL: author.email,
      GIT_COMMITTER_DATE: date,
    });
    return (await this.git(['rev-parse', 'HEAD'])).stdout.trim();
  }

  /** git with text on stdin and extra environment. */
  private run(args: string[], stdin: string, extra: NodeJS.ProcessEnv): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        'git',
        args,
        { cwd: this.repo, env: { ...this.env, ...extra }, timeout: this.options.timeoutMs ?? 120_000 },
        (err, _stdout, stderr) => (err ? reject(new GitError(`git ${args[0] ?? ''}: ${stderr.trim()}`)) : resolve()),
      );
      child.stdin?.end(stdin);
    });
  }

  /**
   * Pushes HEAD to `branch`. Without `lease`, a plain push: a branch that moved on is a
   * rejection (never forced). With `lease`, the branch is replaced only if it still points where
   * it was seen (`undefined`: it must not exist) — for Patchline's own push branch.
   */
  async push(branch: string, lease?: { expected: string | undefined }): Promise<PushResult> {
    const args = ['push', '--porcelain', 'origin', `HEAD:refs/heads/${branch}`];
    if (lease) args.splice(2, 0, `--force-with-lease=refs/heads/${branch}:${lease.expected ?? ''}`);
    const result = await this.git(args, { allowFailure: true });
    const said = `${result.stdout}\n${result.stderr}`;
    if (result.ok) return { kind: 'pushed', sha: (await this.git(['rev-parse', 'HEAD'])).stdout.trim() };
    const rejected = /\[rejected\]|\[remote rejected\]|non-fast-forward|fetch first|stale info/.exec(said);
    if (rejected && !/pre-receive hook declined|protected branch/i.test(said)) {
      const line = said.split('\n').find((l) => /rejected|stale info/.test(l)) ?? rejected[0];
      return { kind: 'rejected', reason: line.trim() };
    }
    throw new GitError(`git push: ${summary(said)}`, AUTH_FAILURE.test(said));
  }

  /**
   * The newest commit of `branch` (within `depth` commits) whose message carries `trailer`:
   * how a change pushed before a crash is found again.
   */
  async findCommit(branch: string, trailer: string, depth = 100): Promise<string | undefined> {
    await this.ensureRepository();
    if ((await this.remoteHead(branch)) === undefined) return undefined;
    await this.fetch(branch, depth);
    const { stdout } = await this.git([
      'log',
      '-F',
      `--grep=${trailer}`,
      '--format=%H',
      '-n',
      '1',
      `refs/remotes/origin/${branch}`,
    ]);
    return stdout.trim() || undefined;
  }

  /** Removes the working copy and its credential files. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function ensureNewline(s: string): string {
  return s.endsWith('\n') ? s : `${s}\n`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What git said, in one line: the lines that say what failed, not git's advice. */
function summary(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(hint:|Please make sure|and the repository exists)/.test(l));
  return lines.slice(-3).join(' ').slice(0, 500);
}
