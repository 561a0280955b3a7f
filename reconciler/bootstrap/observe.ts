// What bootstrap reads from the host before it changes anything: whether the
// host can take HostKit at all (step 1), and how far it is bootstrapped
// already (the package and the bytes it came from, the configuration, the
// secret files, the agent's unit). Nothing here writes.
import path from 'node:path';
import { readJson } from '../apply/state-file.js';
import { HostKitError } from '../core/errors.js';
import { AGENT_UNIT } from '../agent/unit.js';
import type { FileStat, Host } from '../hosts/types.js';
import { PACKAGE_ARCHES } from './deb.js';

export const AGENT_CONFIG_PATH = '/etc/hostkit/agent.yaml';

/** What step 1 found: a Debian-family host HostKit can run on as root. */
export interface HostFacts {
  /** PRETTY_NAME of /etc/os-release. */
  os: string;
  /** dpkg's architecture: amd64 or arm64. */
  arch: string;
  /** Who HostKit runs as there (root, directly or through sudo -n). */
  user: string;
}

/** STATE/bootstrap.json: the package bootstrap installed last, by its bytes. */
export interface BootstrapRecord {
  package: { name: string; version: string; architecture: string; sha256: string };
  installedAt: string;
}

export interface UnitState {
  /** Whether systemd knows the unit (the package brings it). */
  loaded: boolean;
  enabled: boolean;
  /** ActiveState: active, inactive, failed, activating... */
  activeState: string;
  /** Empty while the unit has never run. */
  invocation: string;
  restarts: number;
}

export interface ObservedFile {
  stat: FileStat;
  /** Read only for files bootstrap may write (the configuration, secrets it was given). */
  bytes?: Buffer;
}

export interface Observed {
  /** hostkit's installed version (dpkg status `ii`), if any. */
  installed?: string;
  record?: BootstrapRecord;
  config?: ObservedFile;
  /** Every secret path given or named, by path: undefined where the file does not exist. */
  secrets: Map<string, ObservedFile | undefined>;
  unit: UnitState;
}

function osRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line.trim());
    if (m) out[m[1]!] = m[3]!;
  }
  return out;
}

/** Runs a command, giving its trimmed stdout, or undefined when it cannot run or fails. */
async function output(host: Host, file: string, args: string[]): Promise<string | undefined> {
  try {
    const r = await host.exec(file, args, { timeoutMs: 30_000 });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Step 1: the host runs a Debian-family system with systemd as init, on an
 * architecture HostKit ships for, and HostKit is root there. Throws
 * BOOTSTRAP_HOST_UNSUPPORTED naming everything that is missing at once.
 */
export async function checkHost(host: Host): Promise<HostFacts> {
  const [release, arch, uid, user, systemd] = await Promise.all([
    host.readFile('/etc/os-release').catch(() => undefined),
    output(host, 'dpkg', ['--print-architecture']),
    output(host, 'id', ['-u']),
    output(host, 'id', ['-un']),
    host.stat('/run/systemd/system').catch(() => undefined),
  ]);
  const os = osRelease(release?.toString('utf8') ?? '');
  const family = `${os.ID ?? ''} ${os.ID_LIKE ?? ''}`.split(/\s+/);
  const problems: string[] = [];
  if (!family.includes('debian') && !family.includes('ubuntu')) {
    problems.push(`it is not Debian or Ubuntu (/etc/os-release: ${os.ID ? `ID=${os.ID}` : 'missing'}); HostKit ships as a .deb`);
  }
  if (arch === undefined) problems.push('dpkg --print-architecture did not answer (no dpkg)');
  else if (!(arch in PACKAGE_ARCHES)) problems.push(`its architecture is ${arch}; HostKit ships for ${Object.keys(PACKAGE_ARCHES).join(' and ')}`);
  if (uid !== '0') {
    problems.push(
      `HostKit runs as ${user ?? 'an unknown user'} (uid ${uid ?? '?'}) there, not root: log in as root, or as a user that may run sudo without a password (--sudo)`,
    );
  }
  if (systemd?.type !== 'directory') problems.push('systemd is not running as init (no /run/systemd/system); the agent runs as a systemd service');
  if (problems.length > 0) {
    throw new HostKitError('BOOTSTRAP_HOST_UNSUPPORTED', `${host.name} cannot be bootstrapped: ${problems.join('; ')}. Nothing was changed`, {
      data: { host: host.name, problems },
    });
  }
  return { os: os.PRETTY_NAME ?? os.ID!, arch: arch!, user: user ?? 'root' };
}

export function recordPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'bootstrap.json');
}

/** `systemctl show` of the agent's unit. */
export async function unitState(host: Host): Promise<UnitState> {
  const r = await host.exec('systemctl', ['show', AGENT_UNIT, '-p', 'LoadState,UnitFileState,ActiveState,InvocationID,NRestarts'], { timeoutMs: 30_000 });
  const props = Object.fromEntries(
    r.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  );
  return {
    loaded: props.LoadState === 'loaded',
    enabled: props.UnitFileState === 'enabled',
    activeState: props.ActiveState ?? 'unknown',
    invocation: props.InvocationID ?? '',
    restarts: Number(props.NRestarts ?? 0),
  };
}

async function observeFile(host: Host, file: string, read: boolean): Promise<ObservedFile | undefined> {
  const stat = await host.stat(file);
  if (!stat) return undefined;
  return read && stat.type === 'file' ? { stat, bytes: (await host.readFile(file)) ?? Buffer.alloc(0) } : { stat };
}

/** How far the host is bootstrapped: `given` secrets are read (to compare), `named` ones only looked for. */
export async function observe(host: Host, options: { stateDirectory: string; given: readonly string[]; named: readonly string[] }): Promise<Observed> {
  const [dpkg, record, config, unit] = await Promise.all([
    output(host, 'dpkg-query', ['-W', '-f=${db:Status-Abbrev}\t${Version}', 'hostkit']),
    readJson<BootstrapRecord>(host, recordPath(options.stateDirectory)),
    observeFile(host, AGENT_CONFIG_PATH, true),
    unitState(host),
  ]);
  const secrets = new Map<string, ObservedFile | undefined>();
  const paths = [...new Set([...options.given, ...options.named])];
  const files = await Promise.all(paths.map((p) => observeFile(host, p, options.given.includes(p))));
  paths.forEach((p, i) => secrets.set(p, files[i]));
  const [status, version] = (dpkg ?? '').split('\t');
  return {
    ...(status?.startsWith('ii') && version ? { installed: version } : {}),
    // A record broken by a hand edit counts as none: the package is then installed again.
    ...(record?.package?.sha256 ? { record } : {}),
    ...(config ? { config } : {}),
    secrets,
    unit,
  };
}
