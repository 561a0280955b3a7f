// The dpkg and apt commands the package driver runs, and how it reads them.
// Observing is one `dpkg-query` over every installed package (no network, no
// lock); installing is one noninteractive `apt-get install` for everything
// missing; `apt-get update` runs first only when something must be installed and
// the lists are stale (older than LISTS_MAX_AGE_MS, or an apt source changed since).
import { createHash } from 'node:crypto';
import { HostKitError, isHostKitError } from '../../core/errors.js';
import { describeExec, PARSED_OUTPUT_MAX_BYTES, type Host } from '../../hosts/types.js';

/** How long apt waits for the dpkg lock (unattended-upgrades may hold it) before the run fails. */
export const LOCK_TIMEOUT_SECONDS = 300;
/** Lists older than this are refreshed before an install. */
export const LISTS_MAX_AGE_MS = 3600_000;
/** The whole install may take this long (large packages, slow mirrors). */
const APT_TIMEOUT_MS = 30 * 60_000;

/** One installed package, as dpkg-query lists it. */
export interface Installed {
  version: string;
  /** Names it provides (Provides:, versions stripped). */
  provides: string[];
}

/** Every installed package by name ("ii" only: half-installed or removed-with-config ones are not present). */
export type InstalledSet = Map<string, Installed>;

export const DPKG_QUERY_ARGS = ['--show', '--showformat=${Package}\\t${Version}\\t${db:Status-Abbrev}\\t${Provides}\\n'];

// One process for every package of every resource: the list of all installed packages
// (dpkg-query, not the status file: it also reads dpkg's journal of updates not yet merged).
export async function listInstalled(host: Host): Promise<InstalledSet> {
  let r;
  try {
    r = await host.exec('dpkg-query', DPKG_QUERY_ARGS, { maxOutputBytes: PARSED_OUTPUT_MAX_BYTES });
  } catch (cause) {
    // A directory standing for a host (--root) runs no command: its dpkg database is read instead.
    if (isHostKitError(cause) && cause.code === 'EXEC_ON_REROOTED_HOST') return parseStatus((await host.readFile(DPKG_STATUS))?.toString() ?? '');
    throw cause;
  }
  if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', describeExec('dpkg-query', ['--show'], r));
  return parseInstalled(r.stdout);
}

const DPKG_STATUS = '/var/lib/dpkg/status';

/** dpkg's status file, as the tab-separated lines dpkg-query prints (Package, Version, Status, Provides). */
export function parseStatus(text: string): InstalledSet {
  const lines = text.split(/\n\n+/).map((stanza) => {
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1] ?? '';
    const installed = field('Status').endsWith(' installed') ? 'ii' : '';
    return [field('Package'), field('Version'), installed, field('Provides')].join('\t');
  });
  return parseInstalled(lines.join('\n'));
}

export function parseInstalled(text: string): InstalledSet {
  const out: InstalledSet = new Map();
  for (const line of text.split('\n')) {
    const [name, version, status, provides] = line.split('\t');
    if (!name || !version || !status?.startsWith('ii')) continue;
    out.set(name.replace(/:[a-z0-9]+$/, ''), {
      version,
      provides: (provides ?? '')
        .split(',')
        .map((p) => p.trim().split(/\s/)[0]!)
        .filter(Boolean),
    });
  }
  return out;
}

const withoutEpoch = (version: string) => version.replace(/^\d+:/, '');

/** A version as a manifest pins it: apt's exact string, or a prefix glob ending in "*" ("22.*" matches 22.11.0-1nodesource1). */
export function versionMatches(installed: string, pin: string): boolean {
  const [v, p] = pin.includes(':') ? [installed, pin] : [withoutEpoch(installed), pin];
  return p.endsWith('*') ? v.startsWith(p.slice(0, -1)) : v === p;
}

/**
 * The installed package that makes `name` present: the package itself, one that provides it
 * (a flavour: nginx-full provides nginx where nginx is virtual), or its versioned flavour,
 * Debian's convention for a metapackage (postgresql-15 for postgresql, which provides nothing).
 * A pinned name counts only as itself, at a matching version. Undefined when none is installed.
 */
export function provider(installed: InstalledSet, name: string, pin?: string): { name: string; version: string } | undefined {
  const own = installed.get(name);
  if (pin !== undefined) return own && versionMatches(own.version, pin) ? { name, version: own.version } : undefined;
  if (own) return { name, version: own.version };
  const flavour = new RegExp(`^${name.replace(/[.+]/g, '\\$&')}-\\d+(?:\\.\\d+)?$`);
  for (const [pkg, i] of installed) if (i.provides.includes(name) || flavour.test(pkg)) return { name: pkg, version: i.version };
  return undefined;
}

/** What apt-get runs with: never a prompt, needrestart restarts nothing and asks nothing, the dpkg lock waited on. */
export function aptArgs(command: 'update' | 'install', extra: readonly string[] = []): string[] {
  return [
    'DEBIAN_FRONTEND=noninteractive',
    'NEEDRESTART_MODE=a',
    'NEEDRESTART_SUSPEND=1',
    'apt-get',
    command,
    '-q',
    '-y',
    '-o',
    `DPkg::Lock::Timeout=${LOCK_TIMEOUT_SECONDS}`,
    ...(command === 'install' ? ['--no-install-recommends', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'] : []),
    ...extra,
  ];
}

/** One apt-get install argument: `name`, `name=VERSION` (apt takes a glob there), or `name-` to purge it in the same transaction. */
export function installArgument(name: string, version: string | undefined, remove: boolean): string {
  if (remove) return `${name}-`;
  return version === undefined ? name : `${name}=${version}`;
}

const LOCK_HELD = /Could not get lock|Unable to acquire the dpkg frontend lock|is held by process/;

/** apt-get through `env`, so the run's log and the host's process list show the variables it runs with. */
export async function aptGet(host: Host, command: 'update' | 'install', extra: readonly string[] = []): Promise<string[]> {
  const args = aptArgs(command, extra);
  const r = await host.exec('env', args, { timeoutMs: APT_TIMEOUT_MS });
  // What apt warned about (a source it could not fetch): the reason a package may then be missing.
  if (r.exitCode === 0) return r.stderr.split('\n').filter((l) => /^[WE]: /.test(l));
  const lock = LOCK_HELD.test(r.stderr);
  const what = describeExec('apt-get', args.slice(4), r);
  throw new HostKitError(
    'PACKAGE_INSTALL_FAILED',
    lock ? `the dpkg lock was still held after ${LOCK_TIMEOUT_SECONDS} s (another apt or unattended-upgrades is running): ${what}` : what,
    { data: { command, exitCode: r.exitCode }, retryable: lock || /Temporary failure|Could not resolve|Could not connect/.test(r.stderr) },
  );
}

/** Per name: the versions apt could install ([] when it knows the name but has no candidate), from the local lists only. */
export async function candidates(host: Host, names: readonly string[]): Promise<Map<string, string[]>> {
  const r = await host.exec('apt-cache', ['policy', '--', ...names], { maxOutputBytes: PARSED_OUTPUT_MAX_BYTES });
  if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', describeExec('apt-cache', ['policy', ...names], r));
  return parsePolicy(r.stdout);
}

export function parsePolicy(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  let candidate = false;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) {
      current = [];
      candidate = false;
      out.set(head[1]!.replace(/:[a-z0-9]+$/, ''), current);
      continue;
    }
    const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (cand && current) candidate = cand[1] !== '(none)';
    const version = /^\s{5}(?:\*\*\* )?(\S+) -?\d+$/.exec(line);
    if (version && current && candidate) current.push(version[1]!);
  }
  return out;
}

/** Why `name` (at `version`) cannot be installed from these lists, or undefined when it can. */
export function unavailable(known: Map<string, string[]>, name: string, version: string | undefined): string | undefined {
  const versions = known.get(name);
  if (versions === undefined) return "no apt source of the host has it (check the name, or declare the source in the Host's spec.aptSources)";
  if (versions.length === 0) return 'apt knows the name but has no installable version of it (a virtual package: name one that provides it)';
  if (version !== undefined && !versions.some((v) => versionMatches(v, version)))
    return `no version ${version} in the apt sources (they have ${versions.slice(0, 5).join(', ')})`;
  return undefined;
}

/** Where HostKit notes when it last ran apt-get update, and over which sources. */
export function listsMarker(stateDirectory: string): string {
  return `${stateDirectory}/apt-lists.json`;
}

export interface ListsMarker {
  /** ms since the epoch. */
  updatedAt: number;
  /** sha256 over the apt source files when it ran. */
  sources: string;
}

const SOURCES_DIR = '/etc/apt/sources.list.d';

/** sha256 over every apt source file (sources.list and sources.list.d), by name: a change to one means the lists are out of date. */
export async function sourcesDigest(host: Host): Promise<string> {
  const names = ((await host.readdir(SOURCES_DIR)) ?? []).filter((n) => /\.(list|sources)$/.test(n)).map((n) => `${SOURCES_DIR}/${n}`);
  const hash = createHash('sha256');
  for (const p of ['/etc/apt/sources.list', ...names.sort()]) {
    const bytes = await host.readFile(p);
    if (bytes !== undefined && bytes.length > 0) hash.update(p).update('\0').update(bytes).update('\0');
  }
  return hash.digest('hex');
}

export async function readMarker(host: Host, stateDirectory: string): Promise<ListsMarker | undefined> {
  try {
    // A plan run by another user (a pull request's) may not read the state directory: the lists count as stale.
    const bytes = await host.readFile(listsMarker(stateDirectory));
    if (!bytes) return undefined;
    const m = JSON.parse(bytes.toString()) as ListsMarker;
    return typeof m.updatedAt === 'number' && typeof m.sources === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

export async function writeMarker(host: Host, stateDirectory: string, marker: ListsMarker): Promise<void> {
  await host.writeFile(listsMarker(stateDirectory), JSON.stringify(marker) + '\n', { uid: 0, gid: 0, mode: 0o644 });
}

/** Why the lists must be refreshed before an install, or undefined when they are fresh. */
export function staleness(marker: ListsMarker | undefined, digest: string, now: number): string | undefined {
  if (!marker) return 'HostKit has not updated the package lists on this host yet';
  if (marker.sources !== digest) return 'an apt source changed since the last update';
  if (now - marker.updatedAt > LISTS_MAX_AGE_MS) return `the lists are ${Math.round((now - marker.updatedAt) / 60_000)} min old`;
  return undefined;
}
