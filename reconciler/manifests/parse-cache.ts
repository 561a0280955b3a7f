import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ParseResult } from './load.js';

// Bump when the parse result's shape or the loader's rules change.
const FORMAT = 'hostkit-parse-2';

interface Pack {
  format: string;
  entries: Record<string, { sha: string; result: ParseResult }>;
}

/** The default cache folder: $HOSTKIT_CACHE_DIR, else $XDG_CACHE_HOME/hostkit, else ~/.cache/hostkit. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOSTKIT_CACHE_DIR) return env.HOSTKIT_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'hostkit');
}

export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Parsed manifests by content hash, one pack file per repository folder.
 * YAML parsing is most of the time a large repository takes to load; a file
 * whose bytes did not change is not parsed again. A missing, unreadable or
 * foreign-format pack is simply a cold start; one that cannot be written
 * costs speed, never correctness.
 */
export class ParseCache {
  private readonly file: string;
  private pack: Pack = { format: FORMAT, entries: {} };
  private dirty = false;
  private readonly seen = new Set<string>();

  constructor(cacheDir: string, repoRoot: string) {
    const key = createHash('sha256').update(path.resolve(repoRoot)).digest('hex').slice(0, 16);
    this.file = path.join(cacheDir, `parse-${key}.json`);
  }

  async open(): Promise<void> {
    try {
      const pack = JSON.parse(await fs.readFile(this.file, 'utf8')) as Pack;
      if (pack.format === FORMAT && pack.entries && typeof pack.entries === 'object') this.pack = pack;
    } catch {
      // cold start
    }
  }

  get(file: string, sha: string): ParseResult | undefined {
    this.seen.add(file);
    const entry = this.pack.entries[file];
    return entry?.sha === sha ? entry.result : undefined;
  }

  put(file: string, sha: string, result: ParseResult): void {
    this.seen.add(file);
    this.pack.entries[file] = { sha, result };
    this.dirty = true;
  }

  /** Write the pack (atomically) if anything changed; entries of deleted files are dropped. */
  async save(): Promise<void> {
    for (const file of Object.keys(this.pack.entries)) {
      if (!this.seen.has(file)) {
        delete this.pack.entries[file];
        this.dirty = true;
      }
    }
    if (!this.dirty) return;
    try {
      await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const temp = `${this.file}.${randomBytes(6).toString('hex')}`;
      await fs.writeFile(temp, JSON.stringify(this.pack), { mode: 0o600 });
      await fs.rename(temp, this.file);
    } catch {
      // see the class comment
    }
  }
}
