// Signed write-back commits, verified by the git CLI as a reviewer's git would: an SSH
// signature against an allowed-signers file, an OpenPGP signature (from a key with a
// passphrase) against the public key.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitSigning } from '../../src/controllers/gitwriteback/reconciler.ts';
import { GitError, GitWorkspace, type CommitSigning } from '../../src/rollout/git/workspace.ts';
import { GitHttpServer, GitRepos } from '../support/git-server.ts';

const author = { name: 'Patchline', email: 'patchline@example.com' };

/** git verify-commit in the bare repository, with the given config; true when it verifies. */
function verify(repos: GitRepos, repo: string, sha: string, env: NodeJS.ProcessEnv, config: string[] = []): boolean {
  try {
    execFileSync('git', [...config, 'verify-commit', sha], {
      cwd: repos.path(repo),
      env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...env },
      stdio: 'pipe',
    });
    return true;
  } catch {
    return false;
  }
}

describe('signed write-back commits, verified with git verify-commit', () => {
  let repos: GitRepos;
  let http: GitHttpServer;
  const dirs: string[] = [];
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'patchline-sign-'));
    dirs.push(d);
    return d;
  };

  before(async () => {
    repos = new GitRepos();
    http = await GitHttpServer.start({ users: { bot: 'pw' } }, repos);
  });
  after(async () => {
    await http.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    repos.remove();
  });

  async function signedCommit(repo: string, signing: CommitSigning): Promise<string> {
    await repos.create(repo, { 'a.yaml': 'x: 1\n' });
    const ws = new GitWorkspace({
      dir: dir(),
      url: http.url(repo),
      credentials: { username: 'bot', password: 'pw' },
      signing,
    });
    await ws.checkout('main');
    ws.write('a.yaml', 'x: 2\n');
    const sha = await ws.commit('signed', author, new Date());
    assert.equal((await ws.push('main')).kind, 'pushed');
    return sha;
  }

  it('signs with an SSH key; git verifies it against the allowed signers, and refuses another key', async () => {
    const keys = dir();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'signer'), '-C', 'patchline']);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'other')]);
    const sha = await signedCommit(
      'ssh-signed',
      commitSigning('ssh', { identity: readFileSync(join(keys, 'signer'), 'utf8') }, 's/k'),
    );
    const allowed = (pub: string): string => {
      const file = join(keys, `allowed-${pub}`);
      writeFileSync(file, `${author.email} ${readFileSync(join(keys, `${pub}.pub`), 'utf8')}`);
      return file;
    };
    assert.ok(verify(repos, 'ssh-signed', sha, {}, ['-c', `gpg.ssh.allowedSignersFile=${allowed('signer')}`]));
    assert.ok(!verify(repos, 'ssh-signed', sha, {}, ['-c', `gpg.ssh.allowedSignersFile=${allowed('other')}`]));
  });

  it('signs with an OpenPGP key that has a passphrase; git verifies it with the public key', async () => {
    const maker = dir();
    const gpg = (home: string, args: string[], input?: string): string =>
      execFileSync(
        'gpg',
        ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', 'secret', ...args],
        {
          input,
          env: { PATH: process.env.PATH, HOME: home },
        },
      ).toString();
    gpg(maker, ['--quick-gen-key', 'Patchline <patchline@example.com>', 'ed25519', 'sign', 'never']);
    const armored = gpg(maker, ['--armor', '--export-secret-keys']);
    const publicKey = gpg(maker, ['--armor', '--export']);
    const sha = await signedCommit(
      'pgp-signed',
      commitSigning('openpgp', { 'git.asc': armored, passphrase: 'secret' }, 's/k'),
    );
    const reviewer = dir();
    gpg(reviewer, ['--import'], publicKey);
    assert.ok(verify(repos, 'pgp-signed', sha, { GNUPGHOME: reviewer }));
    const stranger = dir();
    assert.ok(!verify(repos, 'pgp-signed', sha, { GNUPGHOME: stranger }), 'unknown to a keyring without the key');
  });

  it('says which key is missing from the Secret, and refuses a wrong passphrase', async () => {
    assert.throws(() => commitSigning('ssh', {}, 'shop/keys'), /Secret shop\/keys has no key "identity"/);
    assert.throws(() => commitSigning('openpgp', { identity: 'x' }, 'shop/keys'), /has no key "git\.asc"/);
    const maker = dir();
    execFileSync(
      'gpg',
      [
        '--homedir',
        maker,
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        'right',
        '--quick-gen-key',
        'P <p@example.com>',
        'ed25519',
        'sign',
        'never',
      ],
      {
        env: { PATH: process.env.PATH, HOME: maker },
      },
    );
    const armored = execFileSync(
      'gpg',
      [
        '--homedir',
        maker,
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        'right',
        '--armor',
        '--export-secret-keys',
      ],
      {
        env: { PATH: process.env.PATH, HOME: maker },
      },
    ).toString();
    await repos.create('pgp-wrong', { 'a.yaml': 'x: 1\n' });
    const ws = new GitWorkspace({
      dir: dir(),
      url: http.url('pgp-wrong'),
      credentials: { username: 'bot', password: 'pw' },
      signing: { format: 'openpgp', armoredKey: armored, passphrase: 'wrong' },
    });
    await ws.checkout('main');
    ws.write('a.yaml', 'x: 2\n');
    await assert.rejects(ws.commit('signed', author, new Date()), (err: unknown) => err instanceof GitError);
  });
});
