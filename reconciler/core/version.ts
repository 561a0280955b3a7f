import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

// The version of this HostKit (package.json), from sources or from dist/: `--version` shows it, a saved plan records it.
export function hostkitVersion(): string {
  if (cached !== undefined) return cached;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of ['../../package.json', '../../../package.json']) {
    try {
      cached = (JSON.parse(readFileSync(path.join(here, p), 'utf8')) as { version: string }).version;
      return cached;
    } catch {
      // try the next
    }
  }
  cached = 'unknown';
  return cached;
}
