import path from 'node:path';
import type { SourceAccess } from './types.js';
import type { SourceLocation } from './urls.js';
import type { SourceUser } from './user.js';

// A credential reaches git only through a file: the token and the deploy key
// are written 0600, owned by the project's user, into a 0700 directory of its
// own on /run (memory, gone at reboot), and removed when the command is done.
// Neither the value nor anything derived from it is ever an argument or an
// environment variable: git asks a credential helper that `cat`s the token
// file, and ssh reads the key with `-i FILE`.
//
// ssh: StrictHostKeyChecking=accept-new. A deploy host is trusted the first
// time it is seen and pinned per project (the cache's hostkit-known_hosts);
// a changed key is refused (SOURCE_AUTH_FAILED). `yes` would make every new
// project fail until someone pre-seeds known_hosts by hand; keys pinned in
// /etc/ssh/ssh_known_hosts are honoured too (ssh's global file).

const HELPER_USERNAME = 'x-access-token';

export function credentialDirectory(project: string): string {
  return `/run/hostkit-source-${project}`;
}

/**
 * Run `fn` with the environment git needs for `location`'s credentials. If a
 * process is killed before the `finally`, the files stay in /run until the
 * next call for the project (which removes them first) or a reboot.
 */
export async function withCredentials<T>(
  access: SourceAccess,
  user: SourceUser,
  location: SourceLocation,
  cache: string,
  fn: (env: Record<string, string>) => Promise<T>,
): Promise<T> {
  const { host } = access;
  const { token, sshKey } = access.credentials ?? {};
  const dir = credentialDirectory(access.project);
  const tokenFile = path.posix.join(dir, 'token');
  const keyFile = path.posix.join(dir, 'ssh-key');
  const env: Record<string, string> = {};
  if (location.kind === 'remote' && location.scheme === 'ssh') {
    env.GIT_SSH_COMMAND = [
      'ssh',
      ...(sshKey ? ['-i', keyFile, '-o', 'IdentitiesOnly=yes'] : []),
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      `UserKnownHostsFile=${path.posix.join(cache, 'hostkit-known_hosts')}`,
      '-o',
      'ConnectTimeout=30',
    ].join(' ');
  }
  const needsToken = Boolean(token) && location.kind === 'remote' && (location.scheme === 'https' || location.scheme === 'http');
  const needsKey = Boolean(sshKey) && env.GIT_SSH_COMMAND !== undefined;
  if (needsToken && location.kind === 'remote') {
    env.GIT_CONFIG_COUNT = '2';
    // The empty value forgets helpers from other configuration; ours answers only for the source's host.
    env.GIT_CONFIG_KEY_0 = 'credential.helper';
    env.GIT_CONFIG_VALUE_0 = '';
    env.GIT_CONFIG_KEY_1 = 'credential.helper';
    env.GIT_CONFIG_VALUE_1 = credentialHelper(tokenFile, location.host);
  }
  if (!needsToken && !needsKey) return fn(env);
  await removeCredentials(access);
  try {
    await host.mkdir(dir, { uid: user.uid, gid: user.gid, mode: 0o700 });
    await host.setOwnership(dir, { uid: user.uid, gid: user.gid, mode: 0o700 });
    const secret = { uid: user.uid, gid: user.gid, mode: 0o600 };
    if (needsToken) await host.writeFile(tokenFile, `password=${token}\n`, secret, { managed: true });
    if (needsKey) await host.writeFile(keyFile, sshKey!.endsWith('\n') ? sshKey! : `${sshKey}\n`, secret, { managed: true });
    return await fn(env);
  } finally {
    await removeCredentials(access);
  }
}

async function removeCredentials(access: SourceAccess): Promise<void> {
  const dir = credentialDirectory(access.project);
  for (const name of ['token', 'ssh-key']) await access.host.remove(path.posix.join(dir, name), { managed: true });
  await access.host.remove(dir);
}

/**
 * The credential helper (a shell function git runs): on `get` for `host` it
 * prints a user name (unless the URL has one) and the token file's
 * `password=` line; the token never is an argument of any process.
 */
export function credentialHelper(tokenFile: string, host: string): string {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return (
    '!f() { test "$1" = get || exit 0; u=; h=; ' +
    'while IFS= read -r l && test -n "$l"; do case "$l" in username=*) u=1;; host=*) h="${l#host=}";; esac; done; ' +
    `test "$h" = ${quote(host)} || exit 0; test -n "$u" || echo username=${HELPER_USERNAME}; cat ${quote(tokenFile)}; }; f`
  );
}
