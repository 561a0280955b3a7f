import path from 'node:path';
import { HostKitError } from '../../core/errors.js';
import type { Host } from '../../hosts/types.js';
import { run } from '../shared/exec.js';
import { HEADER, UNIT_DIR } from '../shared/unit-files.js';
import { TABLE_REF } from './model.js';
import { writeRootFile } from '../../hosts/root-files.js';

// The table at boot. The kernel keeps no nftables table across a reboot, so the
// last confirmed transaction is kept in STATE/firewall/confirmed.nft and loaded
// by a unit of HostKit's own before the network comes up.

export const BOOT_UNIT = 'hostkit-firewall.service';
export const BOOT_UNIT_PATH = `${UNIT_DIR}/${BOOT_UNIT}`;
// sysinit.target, as Debian's nftables.service: always part of a boot, whereas
// network-pre.target is only reached when something pulls it in.
export const BOOT_WANTED_BY = 'sysinit.target';
/** The link `systemctl enable` makes: its presence is what "enabled" means here. */
export const BOOT_LINK = `${UNIT_DIR}/${BOOT_WANTED_BY}.wants/${BOOT_UNIT}`;
export const BOOT_FILE = 'firewall/confirmed.nft';

/** The boot copy as it is on a host, or as it should be. */
export interface BootState {
  /** The nft file the unit loads (STATE/firewall/confirmed.nft). */
  file?: string;
  /** The unit file's text. */
  unit?: string;
  /** Linked into sysinit.target.wants/. */
  enabled: boolean;
}

export const NO_BOOT: BootState = { enabled: false };

const SAFE_STATE_DIRECTORY = /^(?:\/[A-Za-z0-9._-]+)+$/;

/** A file in the state directory whose path goes on a systemd command line: plain characters only. */
export function statePath(stateDirectory: string, name: string, what: string): string {
  if (!SAFE_STATE_DIRECTORY.test(stateDirectory) || stateDirectory.split('/').includes('..')) {
    throw new HostKitError('FIREWALL_UNSAFE_VALUE', `Refusing state directory ${JSON.stringify(stateDirectory)} for ${what}: expected a plain absolute path`, {
      data: { stateDirectory },
    });
  }
  return path.posix.join(stateDirectory, name);
}

export function bootPath(stateDirectory: string): string {
  return statePath(stateDirectory, BOOT_FILE, 'the firewall boot file');
}

/** The boot file: the transaction that replaces the table (it loads whether or not the table exists). */
export function renderBootFile(transaction: string): string {
  return `# HostKit: the last confirmed table ${TABLE_REF}, loaded at boot by ${BOOT_UNIT}.\n# Written only once a change is confirmed; edits by hand are overwritten.\n${transaction}`;
}

/**
 * The unit that loads `file` at boot: before network-pre.target (and before
 * sysinit.target, which every ordinary service and socket waits for), after
 * nftables.service, whose /etc/nftables.conf begins with `flush ruleset`.
 */
export function renderBootUnit(file: string): string {
  return [
    HEADER.trimEnd(),
    '[Unit]',
    `Description=HostKit firewall: the last confirmed table ${TABLE_REF}`,
    'DefaultDependencies=no',
    'Wants=network-pre.target',
    "# Debian's nftables.service flushes the whole ruleset: load after it, never before.",
    'After=nftables.service',
    'Before=network-pre.target sysinit.target shutdown.target',
    'Conflicts=shutdown.target',
    `RequiresMountsFor=${path.posix.dirname(file)}`,
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    'StandardInput=null',
    `ExecStart=/usr/sbin/nft -f ${file}`,
    '',
    '[Install]',
    `WantedBy=${BOOT_WANTED_BY}`,
    '',
  ].join('\n');
}

/** What the host has: three reads, no process. */
export async function readBoot(host: Host, file: string): Promise<BootState> {
  const [content, unit, link] = await Promise.all([host.readFile(file), host.readFile(BOOT_UNIT_PATH), host.stat(BOOT_LINK)]);
  return { ...(content ? { file: content.toString('utf8') } : {}), ...(unit ? { unit: unit.toString('utf8') } : {}), enabled: link !== undefined };
}

export function sameBoot(a: BootState, b: BootState): boolean {
  return a.file === b.file && a.unit === b.unit && a.enabled === b.enabled;
}

export function hasBoot(b: BootState): boolean {
  return b.file !== undefined || b.unit !== undefined || b.enabled;
}

/** What differs, in a few words, for a plan: "table file missing, unit not enabled". */
export function bootDifferences(observed: BootState, desired: BootState): string {
  const parts: string[] = [];
  if (observed.file !== desired.file) parts.push(observed.file === undefined ? 'table file missing' : 'table file holds another table');
  if (observed.unit !== desired.unit) parts.push(observed.unit === undefined ? `${BOOT_UNIT} missing` : `${BOOT_UNIT} outdated`);
  if (observed.enabled !== desired.enabled) parts.push(`${BOOT_UNIT} not enabled`);
  return parts.join(', ');
}

/** What is there, for a plan that removes it: "table file, hostkit-firewall.service (enabled)". */
export function describeBoot(b: BootState): string {
  const parts = [...(b.file !== undefined ? ['table file'] : []), ...(b.unit !== undefined ? [BOOT_UNIT] : [])];
  return `${parts.join(', ') || BOOT_UNIT + ' link'}${b.enabled ? ' (enabled)' : ''}`;
}

/**
 * Move the host's boot copy from `from` (what is there now) to `to`. The table
 * file comes first and the unit after it when installing, the reverse when
 * removing, so the unit never loads a file that is not there; one daemon-reload
 * when the unit file or its link changed, none otherwise. If this throws
 * part-way, some of it is done: the caller keeps `from` to put back.
 */
export async function syncBoot(host: Host, file: string, from: BootState, to: BootState): Promise<void> {
  if (to.file !== undefined && to.file !== from.file) await writeRootFile(host, file, to.file);
  if (from.enabled && !to.enabled) {
    // Stopping it leaves the table alone (no ExecStop). `systemctl disable` needs the unit
    // file; a link left without it (the file removed by hand) goes by itself.
    if (from.unit !== undefined) await run(host, 'systemctl', ['disable', '--now', '--no-reload', '--', BOOT_UNIT]);
    else await host.remove(BOOT_LINK);
  }
  const unitChanged = to.unit !== from.unit;
  if (unitChanged) {
    if (to.unit === undefined) await host.remove(BOOT_UNIT_PATH);
    else await host.writeFile(BOOT_UNIT_PATH, to.unit, { uid: 0, gid: 0, mode: 0o644 });
  }
  if (to.enabled && !from.enabled) await run(host, 'systemctl', ['enable', '--no-reload', '--', BOOT_UNIT]);
  if (unitChanged || to.enabled !== from.enabled) await run(host, 'systemctl', ['daemon-reload']);
  if (to.file === undefined && from.file !== undefined) await host.remove(file);
}
