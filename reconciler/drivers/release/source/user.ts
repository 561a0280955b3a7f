import { HostKitError } from '../../../core/errors.js';
import type { ExecOptions, ExecResult } from '../../../hosts/types.js';
import { UserDb } from '../../shared/users.js';
import type { SourceAccess } from './types.js';

// Every source command runs as the project's user. setpriv (util-linux, on
// every Debian host) switches uid, gid and supplementary groups and keeps the
// environment exactly as given, with no PAM session (runuser would log a
// session per git call and reset HOME); systemd-run would cost a transient
// unit per call. Root's own processes are started directly.

export interface SourceUser {
  name: string;
  uid: number;
  gid: number;
}

/** The project's user from /etc/passwd (or `users`, read once by the caller); UNKNOWN_USER when it does not exist. */
export async function sourceUser(access: SourceAccess, users?: UserDb): Promise<SourceUser> {
  const entry = (users ?? (await UserDb.read(access.host))).users.get(access.user);
  if (!entry) {
    throw new HostKitError('UNKNOWN_USER', `project ${access.project}: user ${access.user} does not exist on ${access.host.name}`, {
      data: { project: access.project, user: access.user },
    });
  }
  return { name: entry.name, uid: entry.uid, gid: entry.gid };
}

/** Run `argv` as `user`; the environment is `env` on top of the host's, nothing from argv is secret. */
export function execAs(access: SourceAccess, user: SourceUser, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  if (user.uid === 0) return access.host.exec(argv[0]!, argv.slice(1), options);
  return access.host.exec('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', ...argv], options);
}
