import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostKitError } from '../../../core/errors.js';
import type { SourceAccess } from './types.js';

// What a source URL is, checked before any process sees it: a local path
// (file:// or an absolute path) must lie under the Host's allowedRoots, and
// nothing git could read as an option or as a program to run (`-x`, `ext::`),
// nor a password in the URL (it would be an argument, seen in `ps`), is passed on.

export type SourceLocation = { kind: 'file'; path: string } | { kind: 'remote'; scheme: string; host: string };

/** The URL as it may be shown: userinfo (a user name, a password, a token) removed. */
export function displayUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1');
}

/** Every userinfo in `text` (git echoes URLs) removed, and each credential value replaced. */
export function redact(text: string, access: Pick<SourceAccess, 'credentials'>): string {
  let out = text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@\s]*@/g, '$1');
  for (const value of secretFragments(access)) out = out.split(value).join('[redacted]');
  return out;
}

// A key is matched line by line too: an error may quote one line of it.
function secretFragments(access: Pick<SourceAccess, 'credentials'>): string[] {
  const { sshKey, token } = access.credentials ?? {};
  const lines = (sshKey ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= 8 && !/^-----(BEGIN|END) /.test(l));
  return [...(token && token.length > 0 ? [token] : []), ...lines].sort((a, b) => b.length - a.length);
}

/** Where `url` points; SOURCE_PATH_NOT_ALLOWED for a local path outside allowedRoots or an unsupported form. */
export function sourceLocation(access: Pick<SourceAccess, 'project' | 'allowedRoots'>, url: string, schemes: readonly string[]): SourceLocation {
  const refuse = (why: string) =>
    new HostKitError('SOURCE_PATH_NOT_ALLOWED', `project ${access.project}: source ${displayUrl(url)} ${why}`, {
      data: { project: access.project, url: displayUrl(url) },
    });
  if (url.startsWith('-') || /[\s\0]/.test(url)) throw refuse('is not a URL HostKit passes to git');
  let local: string | undefined;
  if (url.startsWith('/')) local = url;
  else if (/^file:/i.test(url)) {
    try {
      local = fileURLToPath(url);
    } catch {
      throw refuse('is not a valid file:// URL');
    }
  }
  if (local !== undefined) {
    const p = path.posix.normalize(local);
    const under = access.allowedRoots.some((root) => p === root || p.startsWith(root.endsWith('/') ? root : root + '/'));
    if (!under) throw refuse(`is not under the host's allowedRoots (${access.allowedRoots.join(', ') || 'none'})`);
    return { kind: 'file', path: p };
  }
  const scp = /^(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!\/\/)/.exec(url);
  if (scp && schemes.includes('ssh')) return { kind: 'remote', scheme: 'ssh', host: scp[1]! };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('is not a URL');
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  if (!schemes.includes(scheme)) throw refuse(`uses ${scheme}://, expected one of ${schemes.map((s) => `${s}://`).join(', ')}`);
  // The URL is an argument of git or curl, so a password in it would show in `ps`.
  if (parsed.password !== '') throw refuse('holds a password, which would be a process argument; give a git source a token or sshKey instead');
  return { kind: 'remote', scheme, host: parsed.host };
}
