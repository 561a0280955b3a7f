// The pristine Debian root file system every test host boots from. Built once
// per machine by build-rootfs.sh and cached under a directory named after a
// hash of the package list and the build script, so changing either builds a
// new one and an unchanged setup reuses the old one.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOTFS_SUITE = 'bookworm';

/** Installed into the root file system on top of debootstrap's minbase + systemd. */
export const ROOTFS_PACKAGES: readonly string[] = [
  'nftables',
  'nginx-light',
  'postgresql-15',
  'pebble',
  'openssl',
  'curl',
  'ca-certificates',
  'python3',
  'iproute2',
  'procps',
  'git',
  // Backups (drivers/backup): the store.
  'restic',
];

export const BUILD_SCRIPT = fileURLToPath(new URL('./build-rootfs.sh', import.meta.url));

/** Where cached root file systems live; HOSTKIT_TEST_CACHE overrides it. */
export function rootfsCacheDir(): string {
  return process.env.HOSTKIT_TEST_CACHE ?? '/var/cache/hostkit-test';
}

/** The cache path for the current package list and build script (it may not exist yet). */
export function rootfsPath(): string {
  const hash = createHash('sha256')
    .update(readFileSync(BUILD_SCRIPT))
    .update('\0')
    .update(ROOTFS_SUITE)
    .update('\0')
    .update(ROOTFS_PACKAGES.join('\n'))
    .digest('hex')
    .slice(0, 16);
  return path.join(rootfsCacheDir(), `rootfs-${hash}`);
}

// The build renames the tree into place only when complete, so presence means done.
function isBuilt(dir: string): boolean {
  return existsSync(path.join(dir, 'etc/hostkit-test-rootfs'));
}

export interface EnsureRootfsOptions {
  /** Progress lines; defaults to stderr. */
  log?: (line: string) => void;
}

/**
 * The path of the pristine root file system, building it first if this machine
 * has none for the current package list (a few minutes; needs root, debootstrap
 * and network access to the Debian mirror). Safe to call from concurrent runs:
 * the build script takes a lock and the second caller reuses the first's tree.
 * HOSTKIT_TEST_ROOTFS points at a prebuilt tree instead.
 */
export async function ensureRootfs(options: EnsureRootfsOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const override = process.env.HOSTKIT_TEST_ROOTFS;
  if (override) {
    if (!existsSync(path.join(override, 'etc/os-release'))) {
      throw new Error(`HOSTKIT_TEST_ROOTFS=${override} does not look like a root file system (no etc/os-release)`);
    }
    return override;
  }
  const dest = rootfsPath();
  if (isBuilt(dest)) return dest;

  log(`hostkit-test: building the test host's root file system into ${dest} (once per machine, a few minutes)`);
  const started = Date.now();
  await runBuild(dest);
  if (!isBuilt(dest)) throw new Error(`${BUILD_SCRIPT} finished but ${dest} is not a complete root file system`);
  log(`hostkit-test: root file system ready in ${Math.round((Date.now() - started) / 1000)} s`);

  const others = staleRootfsDirs(dest);
  if (others.length > 0) {
    log(`hostkit-test: older root file systems can be deleted when no run uses them: ${others.join(' ')}`);
  }
  return dest;
}

function runBuild(dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // Progress (debootstrap, apt) goes straight to our stderr.
    const child = spawn(BUILD_SCRIPT, [dest, ...ROOTFS_PACKAGES], {
      stdio: ['ignore', 2, 2],
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${BUILD_SCRIPT} ${dest} failed (${signal ?? `exit ${code}`}); its output is above`));
    });
  });
}

function staleRootfsDirs(current: string): string[] {
  const dir = path.dirname(current);
  return readdirSync(dir)
    .filter((name) => name.startsWith('rootfs-') && path.join(dir, name) !== current)
    .map((name) => path.join(dir, name));
}
