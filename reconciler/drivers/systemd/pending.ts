import path from 'node:path';
import type { Host } from '../../hosts/types.js';
import { writeRootFile } from '../../hosts/root-files.js';

// Units whose restart is owed. Written BEFORE a unit file changes and cleared
// only after the restart succeeded, so a run killed in between still restarts
// the unit on the next run (ansible/ansible#4766 is the bug this prevents).
export function pendingPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'systemd-pending.json');
}

export async function readPending(host: Host, stateDirectory: string): Promise<Set<string>> {
  const bytes = await host.readFile(pendingPath(stateDirectory));
  if (!bytes) return new Set();
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { units?: unknown };
    return new Set(Array.isArray(parsed.units) ? parsed.units.filter((u): u is string => typeof u === 'string') : []);
  } catch {
    return new Set(); // a torn file cannot happen (atomic writes); an edited one is ignored
  }
}

export async function writePending(host: Host, stateDirectory: string, units: ReadonlySet<string>): Promise<void> {
  await writeRootFile(host, pendingPath(stateDirectory), JSON.stringify({ units: [...units].sort() }) + '\n');
}
