import { describe, expect, it } from 'vitest';
import { FakeHost } from '../../hosts/fake.js';
import {
  BOOT_LINK,
  BOOT_UNIT_PATH,
  bootDifferences,
  bootPath,
  describeBoot,
  NO_BOOT,
  readBoot,
  renderBootFile,
  renderBootUnit,
  syncBoot,
  type BootState,
} from './boot.js';
import { desiredTable } from './desired.js';
import { REPLACE_HEADER, renderTransaction } from './render.js';

const FILE = '/var/lib/hostkit/firewall/confirmed.nft';
const TRANSACTION = renderTransaction(desiredTable({ input: 'drop', ssh: { port: 22, from: [] }, openings: [] }).table);
const INSTALLED: BootState = { file: renderBootFile(TRANSACTION), unit: renderBootUnit(FILE), enabled: true };

// The unit's directives, one "Key=value" per entry (comments and sections left out).
function directives(unit: string): string[] {
  return unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
}

describe('reconciler/drivers/nftables/boot', () => {
  it('the unit loads the boot file before the network and every ordinary unit, after nftables.service, once at boot', () => {
    expect(directives(renderBootUnit(FILE))).toEqual([
      'Description=HostKit firewall: the last confirmed table inet hostkit',
      'DefaultDependencies=no',
      'Wants=network-pre.target',
      'After=nftables.service',
      'Before=network-pre.target sysinit.target shutdown.target',
      'Conflicts=shutdown.target',
      'RequiresMountsFor=/var/lib/hostkit/firewall',
      'Type=oneshot',
      'RemainAfterExit=yes',
      'StandardInput=null',
      `ExecStart=/usr/sbin/nft -f ${FILE}`,
      'WantedBy=sysinit.target',
    ]);
    expect(renderBootUnit(FILE)).toMatch(/^# Managed by HostKit/);
    expect(renderBootUnit(FILE)).toMatch(/\[Unit\][\s\S]*\[Service\][\s\S]*\[Install\]\nWantedBy=sysinit\.target\n$/);
  });

  it('the boot file is the replacing transaction (loads whether or not the table exists) and never flushes the ruleset', () => {
    const file = renderBootFile(TRANSACTION);
    expect(file.endsWith(TRANSACTION)).toBe(true);
    const body = file
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    expect(body.startsWith(REPLACE_HEADER)).toBe(true);
    expect(body).not.toMatch(/flush|table (?!inet hostkit)/);
  });

  it('the boot file lives in the state directory; an unsafe state directory is refused', () => {
    expect(bootPath('/var/lib/hostkit')).toBe(FILE);
    expect(() => bootPath('/var/lib/host kit')).toThrow(/Refusing state directory "\/var\/lib\/host kit" for the firewall boot file/);
    expect(() => bootPath('/var/../etc')).toThrow(/Refusing state directory/);
  });

  it.each<[string, BootState, string]>([
    ['nothing there', NO_BOOT, 'table file missing, hostkit-firewall.service missing, hostkit-firewall.service not enabled'],
    ['another table', { ...INSTALLED, file: 'old' }, 'table file holds another table'],
    ['an older unit, disabled', { ...INSTALLED, unit: 'old', enabled: false }, 'hostkit-firewall.service outdated, hostkit-firewall.service not enabled'],
  ])('bootDifferences: %s', (_title, observed, text) => {
    expect(bootDifferences(observed, INSTALLED)).toBe(text);
  });

  it('describeBoot names what is there', () => {
    expect(describeBoot(INSTALLED)).toBe('table file, hostkit-firewall.service (enabled)');
    expect(describeBoot({ enabled: true })).toBe('hostkit-firewall.service link (enabled)');
  });

  it('syncBoot installs file, then unit, then link, with one daemon-reload; removes in reverse; equal states run nothing', async () => {
    const host = new FakeHost();
    const cmds = () => host.calls.map((c) => [c.file, ...c.args].join(' '));
    await syncBoot(host, FILE, NO_BOOT, INSTALLED);
    expect(host.writes).toEqual(['/var/lib/hostkit', '/var/lib/hostkit/firewall', FILE, BOOT_UNIT_PATH]);
    expect(cmds()).toEqual(['systemctl enable --no-reload -- hostkit-firewall.service', 'systemctl daemon-reload']);
    host.seedFile(BOOT_LINK, ''); // what the real enable does
    expect(await readBoot(host, FILE)).toEqual(INSTALLED);

    host.calls.length = 0;
    host.writes.length = 0;
    await syncBoot(host, FILE, INSTALLED, INSTALLED);
    expect([cmds(), host.writes]).toEqual([[], []]);

    await syncBoot(host, FILE, INSTALLED, NO_BOOT);
    expect(cmds()).toEqual(['systemctl disable --now --no-reload -- hostkit-firewall.service', 'systemctl daemon-reload']);
    expect(host.writes).toEqual([BOOT_UNIT_PATH, FILE]);
  });

  it('syncBoot removes a link left without its unit file by itself (systemctl disable would fail)', async () => {
    const host = new FakeHost();
    host.seedFile(BOOT_LINK, '');
    await syncBoot(host, FILE, { enabled: true }, NO_BOOT);
    expect(host.calls.map((c) => [c.file, ...c.args].join(' '))).toEqual(['systemctl daemon-reload']);
    expect(await readBoot(host, FILE)).toEqual(NO_BOOT);
  });
});
