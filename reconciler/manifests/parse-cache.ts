import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, promises as fs, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_STATE_DIRECTORY } from './expand.js';
import type { ParseResult } from './load.js';

// Bump when the parse result's shape or the loader's rules change.
const FORMAT = 'hostkit-parse-2';

interface Pack {
  format: string;
  entries: Record<string, { sha: string; result: ParseResult }>;
}

export interface CacheDirOptions {
  env?: NodeJS.ProcessEnv;
  /** The effective user id (default: this process's). */
  uid?: number;
  /** Root's cache goes here when it is a writable directory (default /var/lib/hostkit). */
  stateDirectory?: string;
  /** The user's home from the password database, not $HOME (default: os.userInfo()). */
  userHome?: string;
}

/**
 * The parse cache's folder, or undefined for no cache: $HOSTKIT_CACHE_DIR (used
 * only if it can be written), else the first of $XDG_CACHE_HOME/hostkit, as
 * root STATE/cache when the state directory exists and is writable, and
 * ~/.cache/hostkit that can be written. As root, ~ is root's home from the
 * password database (never $HOME), and no folder inside another user's
 * directory is used: `sudo hostkit validate` keeping the caller's HOME or
 * XDG_CACHE_HOME leaves no root-owned files in the caller's home.
 */
export function defaultCacheDir(options: CacheDirOptions = {}): string | undefined {
  const env = options.env ?? process.env;
  const uid = options.uid ?? process.geteuid?.() ?? -1;
  if (env.HOSTKIT_CACHE_DIR) return writable(env.HOSTKIT_CACHE_DIR, uid) ? env.HOSTKIT_CACHE_DIR : undefined;
  const candidates: string[] = [];
  // A relative XDG_CACHE_HOME is invalid (XDG Base Directory specification) and ignored.
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) candidates.push(path.join(env.XDG_CACHE_HOME, 'hostkit'));
  if (uid === 0) {
    const state = options.stateDirectory ?? DEFAULT_STATE_DIRECTORY;
    if (statSync(state, { throwIfNoEntry: false })?.isDirectory()) candidates.push(path.join(state, 'cache'));
  }
  const home = uid === 0 ? (options.userHome ?? os.userInfo().homedir) : env.HOME || (options.userHome ?? os.userInfo().homedir);
  candidates.push(path.join(home, '.cache', 'hostkit'));
  return candidates.find((dir) => writable(dir, uid));
}

// `dir` can be made or written by this user: its nearest existing ancestor is a directory it may
// write; as root, neither it nor any directory above it belongs to another user.
function writable(dir: string, uid: number): boolean {
  if (!path.isAbsolute(dir)) return false;
  let nearest: string | undefined;
  for (let p = dir; ; p = path.dirname(p)) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p, { throwIfNoEntry: false });
    } catch {
      return false; // a directory on the way it may not search
    }
    if (st) {
      nearest ??= p;
      if (nearest === p && !st.isDirectory()) return false;
      if (uid === 0 && st.uid !== 0) return false;
    }
    if (path.dirname(p) === p) break;
  }
  try {
    accessSync(nearest!, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
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
    const temp = `${this.file}.${randomBytes(6).toString('hex')}`;
    try {
      await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      await fs.writeFile(temp, JSON.stringify(this.pack), { mode: 0o600 });
      await fs.rename(temp, this.file);
    } catch {
      await fs.rm(temp, { force: true }).catch(() => undefined); // see the class comment
    }
  }
}
