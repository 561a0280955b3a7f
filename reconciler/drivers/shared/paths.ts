import path from 'node:path';
import { error, type Diagnostic, type Location } from '../../core/diagnostics.js';
import type { Host } from '../../hosts/types.js';

// A manifest names a path under its roots; a symlink among that path's directories
// would carry a read or a write anywhere (`/srv/app/conf -> /etc`). HostKit refuses
// any symlinked directory on the way to a path it manages, wherever it points:
// simpler to check than "inside the roots", and declaring the real path costs nothing.

/**
 * The first directory on the way to `p` that is a symlink, or undefined. Checked
 * from "/" down with lstat (Host.stat), so each directory is seen as it is, not as
 * its parent's symlink would make it. `seen` shares the answers between paths of one call.
 */
export async function symlinkedAncestor(host: Host, p: string, seen = new Map<string, Promise<string | undefined>>()): Promise<string | undefined> {
  const parts = path.posix.normalize(p).split('/').filter(Boolean).slice(0, -1);
  // Every level is asked at once (one round trip over SSH), and the answers read from the top down.
  const levels = parts.map((_, i) => {
    const dir = '/' + parts.slice(0, i + 1).join('/');
    let pending = seen.get(dir);
    if (!pending) {
      pending = host.stat(dir).then((st) => (st?.type === 'symlink' ? dir : undefined));
      seen.set(dir, pending);
    }
    return pending;
  });
  for (const found of await Promise.all(levels)) if (found) return found;
  return undefined;
}

/** The plan error for a managed path with a symlinked directory on its way. */
export function symlinkRefusal(p: string, parent: string, origin: Location): Diagnostic {
  return error(
    'path through a symlink',
    `${p}: ${parent} is a symlink on the host; HostKit does not read or write a managed path through a symlinked directory. Declare the real path, or replace the symlink by a directory.`,
    origin,
  );
}
