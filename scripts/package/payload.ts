// The release's file tree, staged in a directory: the runtime, the built CLI,
// the production dependencies, and the files layout.ts writes. Modes and times
// are normalized so two builds of one commit hold the same bytes.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { finished } from './child.js';
import { APP, COMMAND, CONFIG_DIR, NODE, UNIT, commandScript, packagedAgentUnit } from './layout.js';

interface LockEntry {
  version?: string;
  dev?: boolean;
  link?: boolean;
}

export interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

/**
 * The lockfile's production packages (what `npm ci --omit=dev` installs), as
 * node_modules/ paths, sorted. Copied from the installed tree, so packaging
 * needs no network; each one's version is checked against the lockfile.
 */
export function productionPackages(lock: Lockfile): { path: string; version: string }[] {
  if (lock.lockfileVersion < 2) throw new Error(`Expected package-lock.json of lockfileVersion 2 or 3, got ${lock.lockfileVersion}`);
  return Object.entries(lock.packages)
    .filter(([key, entry]) => key.startsWith('node_modules/') && entry.dev !== true)
    .map(([key, entry]) => {
      if (entry.link || !entry.version) throw new Error(`${key} in package-lock.json is a link or has no version; packaging needs an installed copy`);
      return { path: key, version: entry.version };
    })
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** The lockfile's packages only development needs (none of them may be in the release). */
export function devOnlyPackages(lock: Lockfile): string[] {
  return Object.entries(lock.packages)
    .filter(([key, entry]) => key.startsWith('node_modules/') && entry.dev === true)
    .map(([key]) => key)
    .sort();
}

// Files Node never loads: type declarations (most of the dependencies' bytes,
// @octokit/openapi-types alone is ~5 MB a copy) and source maps.
const UNLOADED_FILES = ['*.d.ts', '*.d.mts', '*.d.cts', '*.map'];

export interface StageOptions {
  /** The checkout: package.json, package-lock.json, dist/, schema/, hooks/, node_modules/. */
  root: string;
  /** An empty directory that becomes the host's "/". */
  stage: string;
  /** The node binary to ship. */
  node: string;
  /** Seconds since the epoch: every file's mtime. */
  sourceDateEpoch: number;
}

export interface StageResult {
  version: string;
  packages: number;
  /** What the payload holds, as dpkg counts it (KiB, each file rounded up). */
  installedSizeKiB: number;
}

/** Writes the tree below `stage` (no DEBIAN/). If it throws, `stage` holds a partial tree to delete. */
export async function stageTree(o: StageOptions): Promise<StageResult> {
  const pkg = JSON.parse(await fs.readFile(path.join(o.root, 'package.json'), 'utf8')) as Record<string, unknown> & { version: string };
  const lock = JSON.parse(await fs.readFile(path.join(o.root, 'package-lock.json'), 'utf8')) as Lockfile;
  const at = (p: string) => path.join(o.stage, p);
  const app = at(APP);
  if (!(await exists(path.join(o.root, 'dist/reconciler/cli.js')))) throw new Error(`${o.root}/dist/reconciler/cli.js is missing: run npm run build first`);

  await fs.mkdir(app, { recursive: true });
  await fs.copyFile(o.node, at(NODE));
  // The CLI reads its version from here and Node its module type; nothing else of package.json matters at runtime.
  const { name, version, description, license, type, engines, dependencies } = pkg;
  await fs.writeFile(path.join(app, 'package.json'), `${JSON.stringify({ name, version, description, license, type, engines, dependencies }, null, 2)}\n`);
  const packages = productionPackages(lock);
  // A package's own node_modules/ comes with it: what npm nested there, its dependencies, is production too.
  const outermost = packages.filter((p) => !packages.some((q) => p.path.startsWith(`${q.path}/node_modules/`)));
  await copyPaths(o.root, ['dist/reconciler', 'schema', 'hooks', ...outermost.map((p) => p.path)], app);
  for (const p of packages) {
    const shipped = await readVersion(path.join(app, p.path));
    if (shipped !== p.version) {
      throw new Error(`${p.path} is ${shipped ?? 'not installed'} but package-lock.json says ${p.version}: run npm ci, then package again`);
    }
  }

  await writeFile(at(COMMAND), commandScript(), 0o755);
  await writeFile(at(UNIT), packagedAgentUnit(), 0o644);
  await fs.mkdir(at(CONFIG_DIR), { recursive: true });

  const installedSizeKiB = await normalizeTree(o.stage, o.sourceDateEpoch);
  return { version: pkg.version, packages: packages.length, installedSizeKiB };
}

// One tar pipeline: thousands of small files, copied in C rather than a call each.
async function copyPaths(root: string, paths: readonly string[], dest: string): Promise<void> {
  const excludes = UNLOADED_FILES.map((pattern) => `--exclude=${pattern}`);
  const pack = spawn('tar', ['-C', root, ...excludes, '-cf', '-', '--', ...paths], { stdio: ['ignore', 'pipe', 'pipe'] });
  const unpack = spawn('tar', ['-C', dest, '-xf', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  const [packed, unpacked] = await Promise.all([finished(pack), finished(unpack), pipeline(pack.stdout, unpack.stdin)]);
  if (packed.code !== 0) throw new Error(`tar could not read the release's files from ${root} (${packed.code}): ${packed.stderr.trim()}`);
  if (unpacked.code !== 0) throw new Error(`tar could not write the release's files to ${dest} (${unpacked.code}): ${unpacked.stderr.trim()}`);
}

async function writeFile(file: string, content: string, mode: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content, { mode });
}

async function readVersion(dir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/**
 * Directories 0755, files 0755 when anyone may execute them and 0644 otherwise,
 * every mtime `epoch`. Returns the size as dpkg's Installed-Size counts it (KiB).
 */
export async function normalizeTree(dir: string, epoch: number): Promise<number> {
  let kib = 1;
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      kib += await normalizeTree(p, epoch);
    } else if (entry.isSymbolicLink()) {
      await fs.lutimes(p, epoch, epoch);
      kib += 1;
    } else {
      const st = await fs.stat(p);
      await fs.chmod(p, st.mode & 0o111 ? 0o755 : 0o644);
      await fs.utimes(p, epoch, epoch);
      kib += Math.ceil(st.size / 1024);
    }
  }
  await fs.chmod(dir, 0o755);
  await fs.utimes(dir, epoch, epoch);
  return kib;
}
