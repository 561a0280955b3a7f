import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { releaseFiles } from '../../scripts/package/build.js';
import { manifestYaml } from '../support/manifests.js';
import { describeHost, useHost } from './harness.js';
import { HOST_NAME } from './reconcile.js';
import { cachedRelease, RELEASE_VERSION } from './release.js';

// HostKit as one package (`npm run package`) on a fresh host that has no Node:
// dpkg -i, the CLI runs from what the .deb brought, the agent's unit stays
// disabled, and dpkg -r takes it all away. The host gets no bind of this
// checkout: only the .deb goes in.

const { deb: DEB, tarball: TARBALL } = releaseFiles(RELEASE_VERSION, 'x64');

const SYSCTL = { kind: 'Sysctl', name: 'routing', on: [HOST_NAME], spec: { parameters: { 'net.ipv4.ip_forward': 1 } } };

describeHost('npm run package: the .deb on a host without Node', () => {
  let release: string;
  beforeAll(async () => {
    release = await cachedRelease();
  }, 120_000);
  const machine = useHost();
  const sh = (script: string) => machine().host.exec('sh', ['-c', script]);

  async function writeRepo(dir: string, files: Record<string, string>): Promise<void> {
    await machine().exec('mkdir', ['-p', `${dir}/hosts`]);
    for (const [file, content] of Object.entries(files)) await machine().host.writeFile(`${dir}/${file}`, content, { uid: 0, gid: 0, mode: 0o644 });
  }

  it('the fresh host has no node, no hostkit and no /usr/lib/hostkit', async () => {
    expect((await sh('command -v node')).exitCode).not.toBe(0);
    expect((await sh('command -v hostkit')).exitCode).not.toBe(0);
    expect((await sh('test -e /usr/lib/hostkit')).exitCode).not.toBe(0);
  });

  it('dpkg -i installs it with what the image already has', async () => {
    await machine().host.writeFile(`/root/${DEB}`, await fs.readFile(path.join(release, DEB)), { uid: 0, gid: 0, mode: 0o644 });
    const install = await machine().host.exec('dpkg', ['-i', `/root/${DEB}`]);
    expect(install.exitCode, install.stderr).toBe(0);
    expect((await machine().exec('dpkg-query', ['-W', '-f=${Status} ${Version}', 'hostkit'])).stdout).toBe(`install ok installed ${RELEASE_VERSION}`);
    expect((await sh('command -v hostkit')).stdout.trim()).toBe('/usr/bin/hostkit');
    expect((await sh('command -v node')).exitCode).not.toBe(0);
  });

  it('hostkit --version prints the version of package.json', async () => {
    expect((await machine().exec('hostkit', ['--version'])).stdout.trim()).toBe(RELEASE_VERSION);
  });

  it('hostkit validate passes a valid repository (exit 0) and names file and line in a broken one (exit 1)', async () => {
    await writeRepo('/root/config', { 'hosts/test-host.yaml': manifestYaml({ kind: 'Host', name: HOST_NAME }), 'hosts/routing.yaml': manifestYaml(SYSCTL) });
    const valid = await machine().host.exec('hostkit', ['validate', '--repo', '/root/config']);
    expect(valid.exitCode, valid.stdout + valid.stderr).toBe(0);
    expect(valid.stdout).toMatch(/^2 manifests valid/m);

    await writeRepo('/root/broken', {
      'hosts/test-host.yaml': manifestYaml({ kind: 'Host', name: HOST_NAME }),
      'hosts/routing.yaml': manifestYaml({ ...SYSCTL, spec: { ...SYSCTL.spec, bogus: 1 } }),
    });
    const broken = await machine().host.exec('hostkit', ['validate', '--repo', '/root/broken']);
    expect(broken.exitCode).toBe(1);
    expect(broken.stdout).toMatch(/^hosts\/routing\.yaml:\d+:\d+: error: unknown field \(at \/spec\/bogus\)$/m);
  });

  it('the agent unit is installed, verified and disabled; nothing started it', async () => {
    expect((await machine().host.exec('systemctl', ['is-enabled', 'hostkit-agent.service'])).stdout.trim()).toBe('disabled');
    expect((await machine().host.exec('systemctl', ['is-active', 'hostkit-agent.service'])).stdout.trim()).toBe('inactive');
    const unit = '/usr/lib/systemd/system/hostkit-agent.service';
    // Debian 12 merges /lib into /usr: systemd names the file by the first path of its search list.
    expect((await machine().exec('systemctl', ['show', '--value', '--property=FragmentPath', 'hostkit-agent.service'])).stdout.trim()).toMatch(
      /^(\/usr)?\/lib\/systemd\/system\/hostkit-agent\.service$/,
    );
    const verify = await machine().host.exec('systemd-analyze', ['verify', unit]);
    expect(verify.exitCode, verify.stderr).toBe(0);
    expect((await sh('test -d /etc/hostkit && ls -A /etc/hostkit')).stdout).toBe('');
  });

  it('with /etc/hostkit/agent.yaml written, systemctl enable --now runs the packaged agent, and it applies the repository', async () => {
    await sh(
      'git init -q -b main /root/config && git -C /root/config add -A && git -C /root/config -c user.name=op -c user.email=op@localhost commit -qm config && git clone -q --bare /root/config /srv/config.git',
    ).then((r) => expect(r.exitCode, r.stderr).toBe(0));
    const config = ['repository: {url: /srv/config.git}', `host: ${HOST_NAME}`, 'report: {enabled: false}', ''].join('\n');
    await machine().host.writeFile('/etc/hostkit/agent.yaml', config, { uid: 0, gid: 0, mode: 0o600 });
    expect((await machine().exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('0');

    await machine().exec('systemctl', ['enable', '--now', 'hostkit-agent.service']);
    const deadline = Date.now() + 60_000;
    let journal = '';
    while (!journal.includes('"msg":"reconciled"') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      journal = (await machine().host.exec('journalctl', ['-u', 'hostkit-agent.service', '-o', 'cat', '--no-pager'])).stdout;
    }
    expect(journal).toMatch(/"msg":"reconciled"/);
    expect(journal).toMatch(/"result":"applied"/);
    expect((await machine().exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1');
    expect((await machine().host.exec('systemctl', ['is-active', 'hostkit-agent.service'])).stdout.trim()).toBe('active');
  });

  it("dpkg -r removes it cleanly: the agent stopped and disabled, the operator's configuration kept", async () => {
    const remove = await machine().host.exec('dpkg', ['-r', 'hostkit']);
    expect(remove.exitCode, remove.stderr).toBe(0);
    for (const p of [
      '/usr/bin/hostkit',
      '/usr/lib/hostkit',
      '/usr/lib/systemd/system/hostkit-agent.service',
      '/etc/systemd/system/multi-user.target.wants/hostkit-agent.service',
    ]) {
      expect((await sh(`test -e ${p} || test -L ${p}`)).exitCode, p).not.toBe(0);
    }
    expect((await machine().host.exec('systemctl', ['is-active', 'hostkit-agent.service'])).stdout.trim()).toBe('inactive');
    expect((await machine().host.exec('systemctl', ['is-enabled', 'hostkit-agent.service'])).stdout.trim()).not.toMatch(/^(enabled|disabled)$/);
    expect((await machine().host.exec('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', 'hostkit'])).stdout).not.toMatch(/^ii/);
    expect((await machine().exec('cat', ['/etc/hostkit/agent.yaml'])).stdout).toContain(`host: ${HOST_NAME}`);
  });

  it('the tarball holds the same tree: extracted at / on this merged-/usr host it runs, and leaves /lib and /bin symlinks', async () => {
    await machine().host.writeFile(`/root/${TARBALL}`, await fs.readFile(path.join(release, TARBALL)), { uid: 0, gid: 0, mode: 0o644 });
    await machine().exec('tar', ['-xzf', `/root/${TARBALL}`, '-C', '/']);
    expect((await sh('test -L /lib && test -L /bin && test -L /sbin')).exitCode).toBe(0);
    expect((await machine().exec('hostkit', ['--version'])).stdout.trim()).toBe(RELEASE_VERSION);
    await machine().exec('systemctl', ['daemon-reload']);
    expect((await machine().host.exec('systemctl', ['is-enabled', 'hostkit-agent.service'])).stdout.trim()).toBe('disabled');
  });
});
