import { expect, it } from 'vitest';
import { APT_REPO_MOUNT, APT_REPO_PORT, APT_REPO_SUITE, serveAptRepo, type ServedAptRepo } from './apt-repo.js';
import { describeHost, useHost, type TestHost } from './harness.js';

// The harness's bare image and local signed apt repository (rootfs.ts variant
// `bare`, apt-repo.ts): the image lacks nginx, PostgreSQL and nftables; the
// repository, served inside the host over its loopback, installs all three with
// no other source; apt refuses it once its Release file is tampered with.

const SOURCE = '/etc/apt/sources.list.d/hostkit-test.sources';
const TAMPERED_PORT = APT_REPO_PORT + 1;
const TAMPERED_DIR = '/tmp/tampered-repo';
const ROOT_FILE = { uid: 0, gid: 0, mode: 0o644 };

/** A deb822 source with the key inline (continuation lines indented, empty ones as " ."). */
function deb822(served: ServedAptRepo): string {
  const key = served.armoredKey
    .trimEnd()
    .split('\n')
    .map((line) => (line === '' ? ' .' : ` ${line}`))
    .join('\n');
  return `Types: deb\nURIs: ${served.uri}\nSuites: ${served.suite}\nComponents: ${served.component}\nSigned-By:\n${key}\n`;
}

// How apt prints a source's URI in its progress and policy lines (no trailing slash).
function origin(served: ServedAptRepo): string {
  return served.uri.replace(/\/$/, '');
}

/** apt-get with no prompt; resolves with its exit code and output. */
async function aptGet(m: TestHost, args: readonly string[]): Promise<{ exitCode: number; output: string }> {
  const r = await m.host.exec('apt-get', args, { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 170_000 });
  return { exitCode: r.exitCode, output: r.stdout + r.stderr };
}

// Fresh lists each time: what one update fetched must not answer for the next.
async function update(m: TestHost): Promise<{ exitCode: number; output: string }> {
  await m.exec('sh', ['-c', 'rm -rf /var/lib/apt/lists/* && mkdir -p /var/lib/apt/lists/partial']);
  return aptGet(m, ['update']);
}

async function installed(m: TestHost, pkg: string): Promise<boolean> {
  const r = await m.host.exec('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return r.exitCode === 0 && r.stdout === 'install ok installed';
}

// A copy of the repository's index with one changed line in FILE, serving the same pool.
async function serveTampered(m: TestHost, served: ServedAptRepo, file: 'InRelease' | 'Release'): Promise<ServedAptRepo> {
  const dists = `${TAMPERED_DIR}/dists/${APT_REPO_SUITE}`;
  await m.exec('sh', [
    '-c',
    `rm -rf ${TAMPERED_DIR} && mkdir -p ${TAMPERED_DIR}/dists && cp -r ${APT_REPO_MOUNT}/dists/${APT_REPO_SUITE} ${dists} && ln -s ${APT_REPO_MOUNT}/pool ${TAMPERED_DIR}/pool`,
  ]);
  if (file === 'Release') await m.exec('rm', [`${dists}/InRelease`]);
  const before = (await m.host.readFile(`${dists}/${file}`))!.toString();
  const after = before.replace('Label: HostKit-test', 'Label: HostKit-evil');
  expect(after).not.toBe(before);
  await m.host.writeFile(`${dists}/${file}`, after, ROOT_FILE);
  await m.exec('systemctl', ['stop', `hostkit-test-apt-${TAMPERED_PORT}.service`]).catch(() => undefined);
  return serveAptRepo(m, { port: TAMPERED_PORT, directory: TAMPERED_DIR });
}

describeHost('test/host/apt-repo: a bare host installs from the local signed repository', () => {
  const machine = useHost({ variant: 'bare', aptRepo: true });
  let served: ServedAptRepo;

  it('the bare image has no nginx, PostgreSQL or nftables (nor node)', async () => {
    const m = machine();
    for (const pkg of ['nginx', 'nginx-light', 'postgresql-15', 'postgresql-client-15', 'nftables']) expect(await installed(m, pkg), pkg).toBe(false);
    for (const command of ['nginx', 'psql', 'nft', 'node']) {
      expect((await m.host.exec('sh', ['-c', `command -v ${command}`])).exitCode, command).not.toBe(0);
    }
    expect(await installed(m, 'systemd')).toBe(true);
    expect(await installed(m, 'curl')).toBe(true);
  });

  it('apt refuses the repository when its InRelease, or its Release under Release.gpg, was changed', async () => {
    const m = machine();
    served = await serveAptRepo(m);
    expect(await m.host.readFile('/etc/apt/sources.list')).toBeUndefined();
    for (const file of ['InRelease', 'Release'] as const) {
      const tampered = await serveTampered(m, served, file);
      await m.host.writeFile(SOURCE, deb822(tampered), ROOT_FILE);
      const r = await update(m);
      expect(r.exitCode, `${file}: ${r.output}`).not.toBe(0);
      expect(r.output, file).toMatch(/signatures were invalid|BADSIG/);
      expect(r.output, file).toMatch(/is not signed/);
      const candidate = await aptGet(m, ['install', '-y', '--no-install-recommends', 'nginx']);
      expect(candidate.exitCode, file).not.toBe(0);
      expect(await installed(m, 'nginx'), file).toBe(false);
    }
  });

  it('apt-get update and install of nginx, postgresql and nftables succeed from the repository alone', async () => {
    const m = machine();
    await m.host.writeFile(SOURCE, deb822(served), ROOT_FILE);
    const sources = (await m.exec('sh', ['-c', 'ls /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true'])).stdout.trim();
    expect(sources).toBe(SOURCE);

    const refreshed = await update(m);
    expect(refreshed.exitCode, refreshed.output).toBe(0);
    // Every index line names the local repository: no other source was asked.
    const fetched = refreshed.output.split('\n').filter((line) => /^(Get|Hit|Ign|Err):/.test(line));
    expect(fetched.length).toBeGreaterThan(0);
    for (const line of fetched) expect(line).toContain(` ${origin(served)} `);
    expect(refreshed.output).not.toMatch(/^W:/m);

    const install = await aptGet(m, ['install', '-y', '--no-install-recommends', 'nginx', 'postgresql', 'nftables']);
    expect(install.exitCode, install.output).toBe(0);
    for (const pkg of ['nginx', 'postgresql', 'postgresql-15', 'nftables']) expect(await installed(m, pkg), pkg).toBe(true);
    const policy = (await m.exec('apt-cache', ['policy', 'nginx'])).stdout;
    expect(policy).toContain(`${origin(served)} ${APT_REPO_SUITE}/main`);

    // Real services from it: nginx answers, the cluster takes a query, nft runs.
    await m.exec('systemctl', ['is-active', '--quiet', 'nginx.service']);
    expect((await m.exec('curl', ['-fsS', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1/'])).stdout).toBe('200');
    await m.exec('systemctl', ['is-active', '--quiet', 'postgresql@15-main.service']);
    expect((await m.exec('runuser', ['-u', 'postgres', '--', 'psql', '-XtAc', 'select 6 * 7'])).stdout.trim()).toBe('42');
    await m.exec('nft', ['list', 'ruleset']);
  });
});
