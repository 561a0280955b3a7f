import path from 'node:path';
import type { Host } from './types.js';

// HostKit's own files on the host (state, records, the firewall's boot copy):
// root's, 0600, in root's 0700 directories made as needed. Directories that
// exist are left as they are.

const ROOT_DIRECTORY = { uid: 0, gid: 0, mode: 0o700 };

/** `dir` and every missing directory above it, root's and 0700. */
export async function ensureRootDirectory(host: Host, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = '/' + parts.slice(0, i).join('/');
    if (!(await host.stat(d))) await host.mkdir(d, ROOT_DIRECTORY);
  }
}

/** Write `file` as root's, 0600, making its directories first. */
export async function writeRootFile(host: Host, file: string, content: string | Buffer): Promise<void> {
  await ensureRootDirectory(host, path.posix.dirname(file));
  await host.writeFile(file, content, { uid: 0, gid: 0, mode: 0o600 });
}
