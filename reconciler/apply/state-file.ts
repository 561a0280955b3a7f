import { writeRootFile } from '../hosts/root-files.js';
import type { Host } from '../hosts/types.js';

// Small JSON files in the state directory (root, 0600), written atomically.

export { ensureRootDirectory as ensureDirectory } from '../hosts/root-files.js';

export async function readJson<T>(host: Host, file: string): Promise<T | undefined> {
  const bytes = await host.readFile(file);
  if (!bytes) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    return undefined; // writes are atomic, so only a hand edit can break one; treated as absent
  }
}

/** How the state files are written: JSON, one-space indent, a final newline. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 1) + '\n';
}

export async function writeJson(host: Host, file: string, value: unknown): Promise<void> {
  await writeRootFile(host, file, jsonText(value));
}
