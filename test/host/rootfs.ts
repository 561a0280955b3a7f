// The pristine Debian root file systems test hosts boot from. Built once per
// machine by build-rootfs.sh and cached under a directory named after a hash of
// the package list and the build scripts, so changing any builds a new one
// and an unchanged setup reuses the old one. Two variants: the standard image
// (nginx, PostgreSQL, nftables and pebble preinstalled) and the bare one (a
// fresh Debian 12 VPS without them, which a test fills from apt-repo.ts).
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
  // Login access (drivers/account): sudo rules are checked by the real visudo.
  'sudo',
  // Remote hosts (hosts/ssh.ts): sshd, started by test/host/ssh.ts only where a test reaches the host over SSH.
  'openssh-server',
];

/**
 * The bare image on top of debootstrap's minbase + systemd: what a fresh Debian 12
 * VPS has (sshd included), without nginx, PostgreSQL, nftables and node. apt verifies signed
 * repositories with gpgv (minbase has it; an armored Signed-By key needs no gpg).
 */
export const BARE_ROOTFS_PACKAGES: readonly string[] = ['openssl', 'curl', 'ca-certificates', 'python3', 'iproute2', 'procps', 'gpgv', 'openssh-server'];

/** Which image: `standard` (ROOTFS_PACKAGES) or `bare` (BARE_ROOTFS_PACKAGES). */
export type RootfsVariant = 'standard' | 'bare';

const VARIANTS: Record<RootfsVariant, { packages: readonly string[]; prefix: string; override: string }> = {
  standard: { packages: ROOTFS_PACKAGES, prefix: 'rootfs-', override: 'HOSTKIT_TEST_ROOTFS' },
  bare: { packages: BARE_ROOTFS_PACKAGES, prefix: 'rootfs-bare-', override: 'HOSTKIT_TEST_BARE_ROOTFS' },
};

export const BUILD_SCRIPT = fileURLToPath(new URL('./build-rootfs.sh', import.meta.url));
/** Sourced by the build scripts (the lock and the atomic rename): part of every cache key. */
export const BUILD_LIB = fileURLToPath(new URL('./build-lib.sh', import.meta.url));

/** Where cached root file systems live; HOSTKIT_TEST_CACHE overrides it. */
export function rootfsCacheDir(): string {
  return process.env.HOSTKIT_TEST_CACHE ?? '/var/cache/hostkit-test';
}

/** The cache path of a variant for its current package list and build script (it may not exist yet). */
export function rootfsPath(variant: RootfsVariant = 'standard'): string {
  const { packages, prefix } = VARIANTS[variant];
  const hash = createHash('sha256')
    .update(readFileSync(BUILD_SCRIPT))
    .update(readFileSync(BUILD_LIB))
    .update('\0')
    .update(ROOTFS_SUITE)
    .update('\0')
    .update(packages.join('\n'))
    .digest('hex')
    .slice(0, 16);
  return path.join(rootfsCacheDir(), `${prefix}${hash}`);
}

// The build renames the tree into place only when complete, so presence means done.
function isBuilt(dir: string): boolean {
  return existsSync(path.join(dir, 'etc/hostkit-test-rootfs'));
}

export interface EnsureRootfsOptions {
  /** Progress lines; defaults to stderr. */
  log?: (line: string) => void;
  /** Which image; defaults to `standard`. */
  variant?: RootfsVariant;
}

/**
 * The path of the pristine root file system, building it first if this machine
 * has none for the current package list (a few minutes; needs root, debootstrap
 * and network access to the Debian mirror). Safe to call from concurrent runs:
 * the build script takes a lock and the second caller reuses the first's tree.
 * HOSTKIT_TEST_ROOTFS (HOSTKIT_TEST_BARE_ROOTFS for the bare variant) points
 * at a prebuilt tree instead.
 */
export async function ensureRootfs(options: EnsureRootfsOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const variant = options.variant ?? 'standard';
  const { packages, override: overrideVar } = VARIANTS[variant];
  const override = process.env[overrideVar];
  if (override) {
    if (!existsSync(path.join(override, 'etc/os-release'))) {
      throw new Error(`${overrideVar}=${override} does not look like a root file system (no etc/os-release)`);
    }
    return override;
  }
  const dest = rootfsPath(variant);
  if (isBuilt(dest)) return dest;

  log(`hostkit-test: building the test host's ${variant} root file system into ${dest} (once per machine, a few minutes)`);
  const started = Date.now();
  await runBuild(dest, packages);
  if (!isBuilt(dest)) throw new Error(`${BUILD_SCRIPT} finished but ${dest} is not a complete root file system`);
  log(`hostkit-test: root file system ready in ${Math.round((Date.now() - started) / 1000)} s`);

  const others = staleRootfsDirs(variant);
  if (others.length > 0) {
    log(`hostkit-test: older root file systems can be deleted when no run uses them: ${others.join(' ')}`);
  }
  return dest;
}

function runBuild(dest: string, packages: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // Progress (debootstrap, apt) goes straight to our stderr.
    const child = spawn(BUILD_SCRIPT, [dest, ...packages], {
      stdio: ['ignore', 2, 2],
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${BUILD_SCRIPT} ${dest} failed (${signal ?? `exit ${code}`}); its output is above`));
    });
  });
}

// Older trees of the same variant (a prefix and 16 hex digits, so `rootfs-` does not match `rootfs-bare-`).
function staleRootfsDirs(variant: RootfsVariant): string[] {
  const current = rootfsPath(variant);
  const dir = path.dirname(current);
  const sameVariant = new RegExp(`^${VARIANTS[variant].prefix}[0-9a-f]{16}$`);
  return readdirSync(dir)
    .filter((name) => sameVariant.test(name) && path.join(dir, name) !== current)
    .map((name) => path.join(dir, name));
}
