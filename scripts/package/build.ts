// `npm run package`: stage the release once, then pack it as a .deb and as a
// tarball side by side (each gzip takes a core for a few seconds).
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeDeb, writeTarball } from './archives.js';
import { DEBIAN_ARCH, controlFile, debianVersion, maintainerScripts, type Arch } from './layout.js';
import { normalizeTree, stageTree } from './payload.js';
import { findNode } from './runtime.js';

export interface BuildOptions {
  /** The checkout, built (dist/) and installed (node_modules/). */
  root: string;
  /** Where the release files go (created). */
  out: string;
  arch: Arch;
  /** A node binary to ship instead of the pinned one (--node). */
  node?: string;
  /** Every file's mtime; defaults to $SOURCE_DATE_EPOCH, else the last commit's time. */
  sourceDateEpoch?: number;
  maintainer?: string;
  /** false: an uncompressed .deb only, for tests that read its contents. */
  compress?: boolean;
  /** Keep the staged tree (returned as `stage`) instead of deleting it. */
  keepStage?: boolean;
}

export interface Artifact {
  file: string;
  bytes: number;
}

export interface BuildResult {
  version: string;
  arch: Arch;
  deb: Artifact;
  tarball?: Artifact;
  node: { version: string; origin: string };
  packages: number;
  installedSizeKiB: number;
  ms: number;
  stage?: string;
}

/** The release file names for a version and architecture. */
export function releaseFiles(version: string, arch: Arch): { deb: string; tarball: string } {
  return { deb: `hostkit_${debianVersion(version)}_${DEBIAN_ARCH[arch]}.deb`, tarball: `hostkit-${version}-linux-${arch}.tar.gz` };
}

/** Builds the release into `out`. If it throws, `out` may hold partial files named like the release's; nothing else is touched. */
export async function buildRelease(o: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const epoch = o.sourceDateEpoch ?? sourceDateEpoch(o.root);
  await fs.mkdir(o.out, { recursive: true });
  const work = await fs.mkdtemp(path.join(o.out, `.build-${o.arch}-`));
  const stage = path.join(work, 'root');
  try {
    const node = await findNode({ root: o.root, arch: o.arch, scratch: path.join(work, 'node'), ...(o.node ? { binary: o.node } : {}) });
    const staged = await stageTree({ root: o.root, stage, node: node.path, sourceDateEpoch: epoch });
    const files = releaseFiles(staged.version, o.arch);

    const debian = path.join(stage, 'DEBIAN');
    await fs.mkdir(debian);
    const control = controlFile({
      version: staged.version,
      arch: o.arch,
      installedSizeKiB: staged.installedSizeKiB,
      nodeVersion: node.version,
      maintainer: o.maintainer,
    });
    await fs.writeFile(path.join(debian, 'control'), control, { mode: 0o644 });
    for (const [name, script] of Object.entries(maintainerScripts())) await fs.writeFile(path.join(debian, name), script, { mode: 0o755 });
    await normalizeTree(debian, epoch);

    const deb = path.join(o.out, files.deb);
    const tarball = path.join(o.out, files.tarball);
    const compress = o.compress !== false;
    await Promise.all([writeDeb(stage, deb, epoch, compress), compress ? writeTarball(stage, tarball) : undefined]);
    return {
      version: staged.version,
      arch: o.arch,
      deb: { file: deb, bytes: (await fs.stat(deb)).size },
      ...(compress ? { tarball: { file: tarball, bytes: (await fs.stat(tarball)).size } } : {}),
      node: { version: node.version, origin: node.origin },
      packages: staged.packages,
      installedSizeKiB: staged.installedSizeKiB,
      ms: Date.now() - started,
      ...(o.keepStage ? { stage } : {}),
    };
  } finally {
    if (o.keepStage) await fs.rm(path.join(work, 'node'), { recursive: true, force: true });
    else await fs.rm(work, { recursive: true, force: true });
  }
}

// Reproducible builds' convention, else the commit being packaged.
function sourceDateEpoch(root: string): number {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined) {
    if (!/^\d+$/.test(fromEnv)) throw new Error(`Expected SOURCE_DATE_EPOCH to be seconds since 1970, got ${JSON.stringify(fromEnv)}`);
    return Number(fromEnv);
  }
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return Math.floor(Date.now() / 1000);
  }
}
