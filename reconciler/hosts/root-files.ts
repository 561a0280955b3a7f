import path from 'node:path';
import type { Host } from './types.js';

// HostKit's own files on the host (state, records, the firewall's boot copy):
// root's, 0600, in root's 0700 directories made as needed. Directories that
// exist are left as they are.

const ROOT_DIRECTORY = { uid: 0, gid: 0, mode: 0o700 };

// Directories known to exist on a host while its run lock is held: the lock's
// own state directory, made when the lock was taken. HostKit never removes it,
// and no other HostKit run can while the lock is held, so writes into it need
// not look again (over SSH, a round trip per state file written).
const known = new WeakMap<Host, Set<string>>();

/** While the run lock is held (apply/lock.ts), `dir` exists on `host`; forgotten when released. */
export function holdKnownDirectory(host: Host, dir: string): () => void {
  const dirs = known.get(host) ?? new Set<string>();
  known.set(host, dirs);
  dirs.add(dir);
  return () => dirs.delete(dir);
}

/**
 * `dir` and every missing directory above it, root's and 0700. Every level is
 * looked at at once (one round trip over SSH, not one per level), then the
 * missing ones are made from the top down; levels at or above a directory
 * known to exist (holdKnownDirectory) are not looked at.
 */
export async function ensureRootDirectory(host: Host, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  let levels = parts.map((_, i) => '/' + parts.slice(0, i + 1).join('/'));
  const dirs = known.get(host);
  if (dirs) {
    const deepest = levels.findLastIndex((d) => dirs.has(d));
    if (deepest !== -1) levels = levels.slice(deepest + 1);
  }
  const found = await Promise.all(levels.map((d) => host.stat(d)));
  for (const [i, d] of levels.entries()) if (!found[i]) await host.mkdir(d, ROOT_DIRECTORY);
}

/** Write `file` as root's, 0600, making its directories first. */
export async function writeRootFile(host: Host, file: string, content: string | Buffer): Promise<void> {
  await ensureRootDirectory(host, path.posix.dirname(file));
  await host.writeFile(file, content, { uid: 0, gid: 0, mode: 0o600 });
}
