import { randomBytes } from 'node:crypto';
import { warning } from '../../core/diagnostics.js';
import { HostKitError } from '../../core/errors.js';
import type { Host } from '../../hosts/types.js';
import type { DriverContext } from '../types.js';

// What every driver that installs a systemd unit file shares (the systemd driver's units,
// the firewall's boot unit): where unit files live, the header HostKit writes, the check
// a candidate file passes before it goes live, and the hardening profiles (also a release's
// build unit's).

export const UNIT_DIR = '/etc/systemd/system';
export const HEADER = '# Managed by HostKit: edits are overwritten on the next apply.\n';

/** A service's isolation profile (a Project's spec.service.isolation.profile). */
export type IsolationProfile = 'none' | 'web-service' | 'strict';

// Named hardening profiles, of a service's unit and of a release's build unit.
// "web-service" suits most network services; "strict" also drops devices,
// capabilities and foreign address families.
// (MemoryDenyWriteExecute is left out: it breaks JIT runtimes such as Node.)
export const PROFILES: Readonly<Record<IsolationProfile, readonly string[]>> = {
  none: [],
  'web-service': [
    'NoNewPrivileges=yes',
    'PrivateTmp=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
  ],
  strict: [
    'NoNewPrivileges=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
  ],
};

// One `systemd-analyze verify` of candidate files in a private directory under /run,
// removed afterwards; its messages, by the unit each names.
export async function analyzeUnits(
  host: Host,
  files: readonly { unit: string; content: string }[],
): Promise<{ ok: boolean; messages: Map<string, string[]>; stderr: string }> {
  const root = { uid: 0, gid: 0, mode: 0o700 };
  const dir = `/run/hostkit/verify-${randomBytes(6).toString('hex')}`;
  await host.mkdir('/run/hostkit', root);
  await host.mkdir(dir, root);
  try {
    await Promise.all(files.map((f) => host.writeFile(`${dir}/${f.unit}`, f.content, { uid: 0, gid: 0, mode: 0o644 })));
    const result = await host.exec('systemd-analyze', ['verify', '--no-pager', ...files.map((f) => `${dir}/${f.unit}`)], {
      env: { SYSTEMD_LOG_COLOR: '0' },
    });
    const lines = result.stderr
      .split('\n')
      .map((l) => l.split(`${dir}/`).join(''))
      .filter((l) => l.trim() !== '');
    const messages = new Map(
      files.map((f) => {
        // hk-app-1.service must not collect the messages of hk-app-10.service.
        const named = new RegExp(`(^|[\\s/'"])${f.unit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[\\s:'"])`);
        return [f.unit, lines.filter((l) => named.test(l))];
      }),
    );
    return { ok: result.exitCode === 0, messages, stderr: result.stderr };
  } finally {
    await Promise.all(files.map((f) => host.remove(`${dir}/${f.unit}`)));
    await host.remove(dir);
  }
}

// `systemd-analyze verify` on the candidate file before it goes live. It exits 0
// on mere warnings (systemd/systemd#23860), so its stderr is logged as such.
export async function verifyUnitFile(ctx: DriverContext, unit: string, content: string): Promise<void> {
  const { ok, messages, stderr } = await analyzeUnits(ctx.host, [{ unit, content }]);
  const own = messages.get(unit)!;
  if (!ok) {
    throw new HostKitError('UNIT_INVALID', `systemd-analyze verify rejected ${unit}; it was not installed:\n${own.join('\n') || stderr.trim()}`, {
      data: { unit },
    });
  }
  for (const message of own) ctx.warnings.push(warning('unit warning', `systemd-analyze verify ${unit}: ${message}`));
}
