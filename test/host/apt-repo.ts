// A local signed apt repository for bare test hosts (rootfs.ts, variant
// `bare`): the .debs of nginx, PostgreSQL and nftables with every dependency the
// bare image lacks, downloaded once by build-apt-repo.sh and cached under a
// directory named after a hash of the package list, the build script and the
// bare image, signed with a key made once. A booted host gets it bound
// read-only (BootOptions.aptRepo) and serves it to itself over its loopback
// (serveAptRepo), which is all the network a test host has.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BindMount, TestHost } from './machine.js';
import { BUILD_LIB, ensureRootfs, rootfsCacheDir, rootfsPath } from './rootfs.js';

/** What the repository holds (with their dependencies): what HostKit installs on a bare host. */
export const APT_REPO_PACKAGES: readonly string[] = ['nginx', 'postgresql', 'nftables', 'sudo', 'git'];

/** The repository's suite and component (its Release file names them). */
export const APT_REPO_SUITE = 'hostkit-test';
export const APT_REPO_COMPONENT = 'main';

/** Where a host booted with `aptRepo: true` sees the repository (read-only). */
export const APT_REPO_MOUNT = '/srv/hostkit-test-apt';

/** The loopback port serveAptRepo listens on inside the host unless told otherwise. */
export const APT_REPO_PORT = 8765;

export const APT_REPO_SCRIPT = fileURLToPath(new URL('./build-apt-repo.sh', import.meta.url));

/** A built repository on this machine. */
export interface AptRepo {
  /** Its root: dists/ and pool/ below. */
  dir: string;
  suite: string;
  component: string;
  /** The signing key's public part, ASCII-armored (what `Signed-By:` takes inline). */
  armoredKey: string;
}

/** A repository served to a booted host: what a manifest's `spec.aptSources` entry needs. */
export interface ServedAptRepo {
  /** http://127.0.0.1:PORT/ (reachable inside that host only). */
  uri: string;
  suite: string;
  component: string;
  armoredKey: string;
}

/** The cache path for the current package list, build script and bare image (it may not exist yet). */
export function aptRepoPath(packages: readonly string[] = APT_REPO_PACKAGES): string {
  const hash = createHash('sha256')
    .update(readFileSync(APT_REPO_SCRIPT))
    .update(readFileSync(BUILD_LIB))
    .update('\0')
    .update(path.basename(rootfsPath('bare')))
    .update('\0')
    .update(packages.join('\n'))
    .digest('hex')
    .slice(0, 16);
  return path.join(rootfsCacheDir(), `apt-repo-${hash}`);
}

// The signing key lives apart from the repositories: a new package list keeps the key.
function keyDir(): string {
  return path.join(rootfsCacheDir(), 'apt-repo-key');
}

function isBuilt(dir: string): boolean {
  return existsSync(path.join(dir, 'dists', APT_REPO_SUITE, 'InRelease'));
}

export interface EnsureAptRepoOptions {
  /** Progress lines; defaults to stderr. */
  log?: (line: string) => void;
  /** What to hold (with dependencies); defaults to APT_REPO_PACKAGES. */
  packages?: readonly string[];
}

/**
 * The repository, built first if this machine has none for the current package
 * list (builds the bare image first if needed; downloads from the Debian mirror
 * the image's sources name, about a minute). Safe to call from concurrent runs:
 * the build script takes a lock and the second caller reuses the first's tree.
 */
export async function ensureAptRepo(options: EnsureAptRepoOptions = {}): Promise<AptRepo> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const packages = options.packages ?? APT_REPO_PACKAGES;
  const dir = aptRepoPath(packages);
  if (!isBuilt(dir)) {
    const bare = await ensureRootfs({ variant: 'bare', log });
    log(`hostkit-test: building the local apt repository into ${dir} (once per machine, about a minute)`);
    const started = Date.now();
    await runBuild([dir, bare, keyDir(), ...packages]);
    if (!isBuilt(dir)) throw new Error(`${APT_REPO_SCRIPT} finished but ${dir} has no signed dists/${APT_REPO_SUITE}/InRelease`);
    log(`hostkit-test: apt repository ready in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  return { dir, suite: APT_REPO_SUITE, component: APT_REPO_COMPONENT, armoredKey: readFileSync(path.join(dir, 'key.asc'), 'utf8') };
}

function runBuild(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // Progress (apt, apt-ftparchive) goes straight to our stderr.
    const child = spawn(APT_REPO_SCRIPT, args, { stdio: ['ignore', 2, 2] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${APT_REPO_SCRIPT} ${args[0]} failed (${signal ?? `exit ${code}`}); its output is above`));
    });
  });
}

/** The read-only mount that shows the repository inside a host at APT_REPO_MOUNT. */
export function aptRepoMount(repo: AptRepo): BindMount {
  return { hostPath: repo.dir, containerPath: APT_REPO_MOUNT };
}

export interface ServeAptRepoOptions {
  /** Loopback port inside the host; defaults to APT_REPO_PORT. */
  port?: number;
  /** What to serve, as seen inside the host; defaults to APT_REPO_MOUNT. */
  directory?: string;
  /**
   * Keep the image's own Debian sources. By default they are moved aside
   * (/etc/apt/sources.list becomes sources.list.disabled): a test host has no
   * network, so `apt-get update` would fail on the mirror.
   */
  keepDistributionSources?: boolean;
}

/**
 * Serves the repository a host was booted with (BootOptions.aptRepo) on its
 * loopback: `python3 -m http.server` as a transient unit
 * (hostkit-test-apt-PORT.service), answering before this resolves. Returns what a
 * `spec.aptSources` entry needs; aptSourceManifest() shapes it.
 */
export async function serveAptRepo(m: TestHost, options: ServeAptRepoOptions = {}): Promise<ServedAptRepo> {
  const port = options.port ?? APT_REPO_PORT;
  const directory = options.directory ?? APT_REPO_MOUNT;
  const key = await m.host.readFile(path.posix.join(APT_REPO_MOUNT, 'key.asc'));
  if (key === undefined) throw new Error(`${m.machine} has no ${APT_REPO_MOUNT}/key.asc: boot it with aptRepo: true`);
  if (!options.keepDistributionSources) await disableDistributionSources(m);
  const unit = `hostkit-test-apt-${port}`;
  await m.exec('systemd-run', [
    `--unit=${unit}`,
    '--quiet',
    '--',
    'python3',
    '-m',
    'http.server',
    String(port),
    '--bind',
    '127.0.0.1',
    '--directory',
    directory,
  ]);
  const uri = `http://127.0.0.1:${port}/`;
  const release = `${uri}dists/${APT_REPO_SUITE}/Release`;
  for (let attempt = 0; ; attempt++) {
    const probe = await m.host.exec('curl', ['-fsS', '-o', '/dev/null', release]);
    if (probe.exitCode === 0) break;
    if (attempt >= 100) throw new Error(`${unit} on ${m.machine} does not answer ${release}: ${probe.stderr.trim()}`);
    await sleep(50);
  }
  return { uri, suite: APT_REPO_SUITE, component: APT_REPO_COMPONENT, armoredKey: key.toString() };
}

/** Moves the image's Debian sources aside, so apt sees only the sources a test declares. */
export async function disableDistributionSources(m: TestHost): Promise<void> {
  await m.exec('sh', ['-c', 'if [ -f /etc/apt/sources.list ]; then mv /etc/apt/sources.list /etc/apt/sources.list.disabled; fi']);
}

/** A served repository as a Host manifest's `spec.aptSources` entry (inline key). */
export function aptSourceManifest(served: ServedAptRepo, name = 'hostkit-test') {
  return { name, uris: [served.uri], suites: [served.suite], components: [served.component], signedBy: { key: served.armoredKey } };
}
