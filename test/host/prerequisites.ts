// Whether this machine can boot test hosts at all. Shared by the global setup
// (which builds the root file system) and describeHost (which skips or fails).
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Commands the harness runs on this machine; install-prerequisites.sh provides them. */
export const REQUIRED_COMMANDS: readonly string[] = [
  'systemd-nspawn',
  'debootstrap',
  'nsenter',
  'setpriv',
  'mount',
  'umount',
  'flock',
  'apt-ftparchive',
  'gpg',
];

/** Why the real-host suite cannot run here, or undefined when it can. */
export function hostSuiteUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `real-host tests need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) {
    return 'real-host tests need root (they mount overlays and run systemd-nspawn); run them as root or in CI';
  }
  const missing = REQUIRED_COMMANDS.filter((command) => !onPath(command));
  if (missing.length > 0) {
    return `missing ${missing.join(', ')}: run test/host/install-prerequisites.sh as root`;
  }
  return undefined;
}

/** True when running in CI, where the real-host suite must run rather than skip. */
export function inCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

function onPath(command: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return dirs.some((dir) => {
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
