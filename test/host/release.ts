// This checkout's release (`npm run package`: the .deb and the tarball) for
// host tests, built once per content and cached beside the root file systems,
// so the tests that install it (package.test.ts, bootstrap.test.ts) pay for
// the build and its gzip once.
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRelease, releaseFiles } from '../../scripts/package/build.js';
import { rootfsCacheDir } from './rootfs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** package.json's version: the release's. */
export const RELEASE_VERSION = (JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const { deb: DEB } = releaseFiles(RELEASE_VERSION, 'x64');

// What the release is made of: rebuilt only when one of these changes, so CI pays for gzip once.
const INPUTS = ['package.json', 'package-lock.json', 'dist/reconciler', 'schema', 'hooks', 'scripts/package', 'node_modules/node/package.json'];

async function inputsHash(): Promise<string> {
  const hash = createHash('sha256');
  const add = async (rel: string): Promise<void> => {
    const abs = path.join(ROOT, rel);
    if ((await fs.stat(abs)).isDirectory()) {
      for (const name of (await fs.readdir(abs)).sort()) await add(path.join(rel, name));
    } else {
      hash
        .update(`${rel}\0`)
        .update(await fs.readFile(abs))
        .update('\0');
    }
  };
  for (const input of INPUTS) await add(input);
  return hash.digest('hex').slice(0, 16);
}

/** The x64 release of this checkout (its folder, holding releaseFiles()), from the test cache or built into it (about 20 s). */
export async function cachedRelease(): Promise<string> {
  const dir = path.join(rootfsCacheDir(), `package-${await inputsHash()}`);
  if (existsSync(path.join(dir, DEB))) return dir;
  const building = `${dir}.building-${process.pid}`;
  await fs.rm(building, { recursive: true, force: true });
  const result = await buildRelease({ root: ROOT, out: building, arch: 'x64' });
  process.stderr.write(`[host] built ${DEB} (${(result.deb.bytes / 1e6).toFixed(1)} MB) in ${(result.ms / 1000).toFixed(1)} s into ${dir}\n`);
  await fs.rename(building, dir).catch(async (error: NodeJS.ErrnoException) => {
    // Another run put the same release in place first.
    if (!existsSync(path.join(dir, DEB))) throw error;
    await fs.rm(building, { recursive: true, force: true });
  });
  await removeStaleReleases(dir);
  return dir;
}

// Releases of other contents left by earlier runs (about 100 MB each); a day old, so no run still uses them.
async function removeStaleReleases(current: string): Promise<void> {
  const parent = path.dirname(current);
  for (const name of await fs.readdir(parent)) {
    const dir = path.join(parent, name);
    if (!name.startsWith('package-') || dir === current) continue;
    if (Date.now() - (await fs.stat(dir)).mtimeMs > 24 * 3600_000) await fs.rm(dir, { recursive: true, force: true });
  }
}
