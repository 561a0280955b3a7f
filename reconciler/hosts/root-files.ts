import path from 'node:path';
import type { Host } from './types.js';

// HostKit's own files on the host (state, records, the firewall's boot copy):
// root's, 0600, in root's 0700 directories made as needed. Directories that
// exist are left as they are.

const ROOT_DIRECTORY = { uid: 0, gid: 0, mode: 0o700 };

/**
 * `dir` and every missing directory above it, root's and 0700. Every level is
 * looked at at once (one round trip over SSH, not one per level), then the
 * missing ones are made from the top down.
 */
export async function ensureRootDirectory(host: Host, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  const levels = parts.map((_, i) => '/' + parts.slice(0, i + 1).join('/'));
  const found = await Promise.all(levels.map((d) => host.stat(d)));
  for (const [i, d] of levels.entries()) if (!found[i]) await host.mkdir(d, ROOT_DIRECTORY);
}

/** Write `file` as root's, 0600, making its directories first. */
export async function writeRootFile(host: Host, file: string, content: string | Buffer): Promise<void> {
  await ensureRootDirectory(host, path.posix.dirname(file));
  await host.writeFile(file, content, { uid: 0, gid: 0, mode: 0o600 });
}
