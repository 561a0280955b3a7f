import path from 'node:path';
import type { Host } from '../hosts/types.js';

// Small JSON files in the state directory (root, 0600), written atomically.

export async function ensureDirectory(host: Host, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = '/' + parts.slice(0, i).join('/');
    if (!(await host.stat(d))) await host.mkdir(d, { uid: 0, gid: 0, mode: 0o700 });
  }
}

export async function readJson<T>(host: Host, file: string): Promise<T | undefined> {
  const bytes = await host.readFile(file);
  if (!bytes) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    return undefined; // writes are atomic, so only a hand edit can break one; treated as absent
  }
}

export async function writeJson(host: Host, file: string, value: unknown): Promise<void> {
  await ensureDirectory(host, path.posix.dirname(file));
  await host.writeFile(file, JSON.stringify(value, null, 1) + '\n', { uid: 0, gid: 0, mode: 0o600 });
}
