import { describe, expect, it } from 'vitest';
import { renderAgentUnit } from '../../reconciler/agent/unit.js';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { releaseFiles } from './build.js';
import { commandScript, controlFile, debianVersion, maintainerScripts, packagedAgentUnit } from './layout.js';
import { devOnlyPackages, productionPackages, type Lockfile } from './payload.js';

const fields = (control: string) => Object.fromEntries([...control.matchAll(/^([A-Za-z-]+): (.*)$/gm)].map((m) => [m[1]!, m[2]!]));

describe('scripts/package/layout', () => {
  it('/usr/bin/hostkit runs the bundled node with the runtime flags and passes every argument on', () => {
    const script = commandScript();
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain(`\nexec /usr/lib/hostkit/node ${NODE_FLAGS.join(' ')} /usr/lib/hostkit/lib/dist/reconciler/cli.js "$@"\n`);
  });

  it('the agent unit is the one `hostkit agent install` renders, for the packaged paths and /etc/hostkit/agent.yaml', () => {
    const unit = packagedAgentUnit();
    expect(unit).toContain(
      `\nExecStart=/usr/lib/hostkit/node ${NODE_FLAGS.join(' ')} /usr/lib/hostkit/lib/dist/reconciler/cli.js agent --config /etc/hostkit/agent.yaml\n`,
    );
    const installed = renderAgentUnit({
      node: '/usr/lib/hostkit/node',
      cli: '/usr/lib/hostkit/lib/dist/reconciler/cli.js',
      config: '/etc/hostkit/agent.yaml',
      host: 'web-1',
      stateDirectory: '/var/lib/hostkit',
    });
    // Only the comment on top and the host in the description differ.
    const body = (u: string) => u.split('\n').filter((l) => !l.startsWith('#') && !l.startsWith('Description='));
    expect(body(unit)).toEqual(body(installed));
    expect(unit).toContain('\nDescription=HostKit agent\n');
    expect(unit).toMatch(
      /^# Installed disabled by the hostkit package: write \/etc\/hostkit\/agent.yaml, then systemctl enable --now hostkit-agent.service.\n/,
    );
  });

  it('control: name, Debian version and architecture, what the runtime needs from Debian', () => {
    const control = fields(controlFile({ version: '0.3.0', arch: 'x64', installedSizeKiB: 150_000, nodeVersion: '24.21.0' }));
    expect(control).toMatchObject({ Package: 'hostkit', Version: '0.3.0', Architecture: 'amd64', 'Installed-Size': '150000', Section: 'admin' });
    expect(control.Maintainer).toMatch(/^.+ <.+@.+>$/);
    expect(control.Depends!.split(', ')).toEqual(expect.arrayContaining(['libc6 (>= 2.28)', 'git', 'ca-certificates', 'systemd']));
    expect(fields(controlFile({ version: '0.3.0', arch: 'arm64', installedSizeKiB: 1, nodeVersion: '24.21.0' })).Architecture).toBe('arm64');
  });

  it.each([
    ['0.1.0', '0.1.0'],
    ['1.2.0-rc.1', '1.2.0~rc.1'],
  ])('npm version %s is Debian version %s', (npm, deb) => {
    expect(debianVersion(npm)).toBe(deb);
  });

  it('refuses a version Debian cannot order', () => {
    expect(() => debianVersion('v1')).toThrow('Expected package.json\'s version like 1.2.3 or 1.2.3-rc.1, got "v1"');
  });

  it('names the release files after the version and architecture', () => {
    expect(releaseFiles('0.1.0', 'x64')).toEqual({ deb: 'hostkit_0.1.0_amd64.deb', tarball: 'hostkit-0.1.0-linux-x64.tar.gz' });
    expect(releaseFiles('1.0.0-rc.1', 'arm64')).toEqual({ deb: 'hostkit_1.0.0~rc.1_arm64.deb', tarball: 'hostkit-1.0.0-rc.1-linux-arm64.tar.gz' });
  });

  it('no maintainer script enables or starts the agent; removal stops and disables it', () => {
    const scripts = maintainerScripts();
    for (const [name, script] of Object.entries(scripts)) {
      expect(script.startsWith('#!/bin/sh\nset -e\n'), name).toBe(true);
      expect(script, name).not.toMatch(/systemctl (?:[a-z-]+ )*(?:enable|start|restart|reenable|preset)\b/);
    }
    expect(scripts.prerm).toContain('systemctl disable --now hostkit-agent.service');
  });
});

describe('scripts/package/payload', () => {
  const lock: Lockfile = {
    lockfileVersion: 3,
    packages: {
      '': { version: '0.1.0' },
      'node_modules/yaml': { version: '2.9.1' },
      'node_modules/vitest': { version: '5.1.1', dev: true },
      'node_modules/octokit/node_modules/@octokit/types': { version: '14.0.0' },
      'node_modules/acme-client': { version: '5.4.0' },
    },
  };

  it('takes the production packages, nested ones included, and leaves development ones out', () => {
    expect(productionPackages(lock)).toEqual([
      { path: 'node_modules/acme-client', version: '5.4.0' },
      { path: 'node_modules/octokit/node_modules/@octokit/types', version: '14.0.0' },
      { path: 'node_modules/yaml', version: '2.9.1' },
    ]);
    expect(devOnlyPackages(lock)).toEqual(['node_modules/vitest']);
  });

  it('refuses a linked package and an old lockfile', () => {
    expect(() => productionPackages({ lockfileVersion: 3, packages: { 'node_modules/x': { link: true } } })).toThrow(
      'node_modules/x in package-lock.json is a link',
    );
    expect(() => productionPackages({ lockfileVersion: 1, packages: {} })).toThrow('lockfileVersion 2 or 3, got 1');
  });
});
