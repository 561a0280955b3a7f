// The harness itself, on a real booted host: NspawnHost's contract, and the
// services the driver tests rely on (nginx, PostgreSQL, nftables, pebble).
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { hostHttpRequest } from '../../reconciler/hosts/http.js';
import { bootHost, describeHost, useHost } from './harness.js';

const root = { uid: 0, gid: 0, mode: 0o755 };

describeHost('test/host: a booted host', () => {
  const machine = useHost();

  it('boots to "running", named after its Host manifest', async () => {
    const { host } = machine();
    process.stderr.write(`[host] ${machine().machine} booted in ${machine().bootMs} ms\n`);
    expect((await host.exec('systemctl', ['is-system-running'])).stdout.trim()).toBe('running');
    expect((await host.exec('hostname', [])).stdout.trim()).toBe('test-host');
    expect(await host.hostname()).toBe(machine().hostname);
    expect((await host.readFile('/etc/hostname'))?.toString()).toBe('test-host\n');
  });

  it('runs commands inside as root, with input, env, cwd and exit codes', async () => {
    const { host } = machine();
    expect(await host.exec('id', ['-u'])).toEqual({
      exitCode: 0,
      stdout: '0\n',
      stderr: '',
    });
    expect((await host.exec('sh', ['-c', 'echo oops >&2; exit 3'])).exitCode).toBe(3);
    expect((await host.exec('sh', ['-c', 'echo oops >&2; exit 3'])).stderr).toBe('oops\n');
    expect((await host.exec('cat', [], { input: 'hello' })).stdout).toBe('hello');
    expect((await host.exec('printenv', ['HKT_VAR'], { env: { HKT_VAR: 'a b' } })).stdout).toBe('a b\n');
    expect((await host.exec('pwd', [], { cwd: '/etc/nginx' })).stdout).toBe('/etc/nginx\n');
    // Arguments are passed as they are: no shell in between.
    expect((await host.exec('echo', ['$HOME', '; true'])).stdout).toBe('$HOME ; true\n');
    // Its PID 1 is the host's systemd, not this machine's init.
    expect((await host.exec('cat', ['/proc/1/comm'])).stdout).toBe('systemd\n');
  });

  it('rejects when a command cannot start, and kills it on timeout', async () => {
    const { host } = machine();
    await expect(host.exec('/no/such/command', [])).rejects.toMatchObject({ code: 'EXEC_FAILED' });
    await expect(host.exec('pwd', [], { cwd: '/no/such/dir' })).rejects.toMatchObject({ code: 'EXEC_FAILED' });
    const started = Date.now();
    await expect(host.exec('sleep', ['60'], { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'EXEC_TIMED_OUT',
      retryable: true,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    // The sleep inside the host's PID namespace went with it (a zombie at most).
    expect((await host.exec('pgrep', ['-x', '--runstates', 'D,R,S,T', 'sleep'])).exitCode).toBe(1);
    // machine().exec is the throwing helper for tests.
    await expect(machine().exec('false', [])).rejects.toThrow(/false exited 1/);
  });

  it('writes, reads, stats, chowns and removes files with owner and mode', async () => {
    const { host } = machine();
    await host.mkdir('/srv/hkt', root);
    await host.mkdir('/srv/hkt', root); // no error when it exists
    await host.writeFile('/srv/hkt/site.conf', 'server {}\n', {
      uid: 33,
      gid: 33,
      mode: 0o640,
    });

    expect((await host.readFile('/srv/hkt/site.conf'))?.toString()).toBe('server {}\n');
    expect(await host.stat('/srv/hkt/site.conf')).toEqual({
      type: 'file',
      mode: 0o640,
      uid: 33,
      gid: 33,
      size: 10,
    });
    expect(await host.stat('/srv/hkt')).toMatchObject({
      type: 'directory',
      mode: 0o755,
      uid: 0,
    });
    expect(await host.readdir('/srv/hkt')).toEqual(['site.conf']);
    // As the host itself sees it: www-data is uid 33 inside.
    expect((await host.exec('stat', ['-c', '%a:%U:%G', '/srv/hkt/site.conf'])).stdout).toBe('640:www-data:www-data\n');

    await host.writeFile('/srv/hkt/site.conf', 'server { listen 80; }\n', {
      uid: 33,
      gid: 33,
      mode: 0o640,
    });
    expect((await host.exec('cat', ['/srv/hkt/site.conf'])).stdout).toBe('server { listen 80; }\n');
    expect(await host.readdir('/srv/hkt')).toEqual(['site.conf']); // no temporary file left

    await host.setOwnership('/srv/hkt/site.conf', {
      uid: 0,
      gid: 33,
      mode: 0o600,
    });
    expect((await host.exec('stat', ['-c', '%a:%U:%G', '/srv/hkt/site.conf'])).stdout).toBe('600:root:www-data\n');

    await host.remove('/srv/hkt/site.conf');
    await host.remove('/srv/hkt/site.conf'); // no error when gone
    await host.remove('/srv/hkt');
    expect(await host.stat('/srv/hkt')).toBeUndefined();
    expect(await host.readFile('/srv/hkt/site.conf')).toBeUndefined();
    expect(await host.readdir('/srv/hkt')).toBeUndefined();
    expect((await host.exec('test', ['-e', '/srv/hkt'])).exitCode).toBe(1);
  });

  it('sees mounts made inside the host, such as /run', async () => {
    const { host } = machine();
    await host.writeFile('/run/hkt-marker', 'inside\n', {
      uid: 0,
      gid: 0,
      mode: 0o644,
    });
    expect((await host.exec('cat', ['/run/hkt-marker'])).stdout).toBe('inside\n');
    expect((await host.exec('findmnt', ['-n', '-o', 'FSTYPE', '/run'])).stdout.trim()).toBe('tmpfs');
    await host.remove('/run/hkt-marker');
  });

  it('resolves symlinks inside the host, never on this machine', async () => {
    const { host } = machine();
    // /etc/hostkit-test-rootfs exists only inside the host.
    expect(existsSync('/etc/hostkit-test-rootfs')).toBe(false);
    const marker = (await host.exec('cat', ['/etc/hostkit-test-rootfs'])).stdout;
    await machine().exec('mkdir', ['-p', '/srv/links']);
    await machine().exec('ln', ['-sfn', '/etc/hostkit-test-rootfs', '/srv/links/absolute']);
    await machine().exec('ln', ['-sfn', '/', '/srv/links/root']);
    await machine().exec('ln', ['-sfn', '../../../../../etc', '/srv/links/up']);

    expect((await host.readFile('/srv/links/absolute'))?.toString()).toBe(marker);
    expect((await host.readFile('/srv/links/root/etc/hostkit-test-rootfs'))?.toString()).toBe(marker);
    expect((await host.readFile('/srv/links/up/hostkit-test-rootfs'))?.toString()).toBe(marker);
    expect((await host.readFile('/../../etc/hostkit-test-rootfs'))?.toString()).toBe(marker);
    expect(await host.readdir('/srv/links/root/srv/links')).toEqual(expect.arrayContaining(['absolute', 'root', 'up']));
    expect(await host.stat('/srv/links/absolute')).toMatchObject({
      type: 'symlink',
    });

    // The last component is not followed: the link changes, its target does not.
    await machine().exec('ln', ['-sfn', '/etc/passwd', '/srv/links/passwd']);
    const passwdBefore = (await host.exec('stat', ['-c', '%a:%U', '/etc/passwd'])).stdout;
    await host.setOwnership('/srv/links/passwd', {
      uid: 33,
      gid: 33,
      mode: 0o600,
    });
    expect((await host.exec('stat', ['-c', '%a:%U', '/etc/passwd'])).stdout).toBe(passwdBefore);
    expect((await host.exec('stat', ['-c', '%U', '/srv/links/passwd'])).stdout).toBe('www-data\n');
    await host.writeFile('/srv/links/passwd', 'replaced\n', {
      uid: 0,
      gid: 0,
      mode: 0o644,
    });
    expect(await host.stat('/srv/links/passwd')).toMatchObject({
      type: 'file',
    });
    expect((await host.exec('head', ['-c', '5', '/etc/passwd'])).stdout).toBe('root:');
    await host.remove('/srv/links/absolute');
    expect((await host.exec('test', ['-e', '/etc/hostkit-test-rootfs'])).exitCode).toBe(0);
  });

  it('serves HTTP with nginx on 127.0.0.1:80', async () => {
    const { host } = machine();
    expect((await host.exec('systemctl', ['is-active', 'nginx'])).stdout.trim()).toBe('active');
    const curl = await machine().exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:80/']);
    expect(curl.stdout).toBe('200');
  });

  it('connects to ports on its own loopback, not on this machine', async () => {
    const { host } = machine();
    const served = await hostHttpRequest(host, { port: 80, path: '/', hostHeader: 'localhost' });
    expect(served.status).toBe(200);
    expect(served.headers.server).toMatch(/^nginx/);
    // A port that only this machine could have open is refused inside.
    const outside = net.createServer().listen(0, '127.0.0.1');
    await once(outside, 'listening');
    const port = (outside.address() as net.AddressInfo).port;
    try {
      await expect(host.connect(port)).rejects.toMatchObject({ code: 'HOST_CONNECT_FAILED', message: expect.stringContaining('ECONNREFUSED') });
    } finally {
      outside.close();
    }
    expect((await machine().exec('git', ['--version'])).stdout).toMatch(/^git version/);
  });

  it('runs PostgreSQL 15', async () => {
    const psql = await machine().exec('runuser', ['-u', 'postgres', '--', 'psql', '-tAc', 'select 1']);
    expect(psql.stdout.trim()).toBe('1');
    const version = await machine().exec('runuser', ['-u', 'postgres', '--', 'psql', '-tAc', 'show server_version']);
    expect(version.stdout).toMatch(/^15\./);
  });

  it('applies nftables rules inside without touching this machine', async () => {
    const { host } = machine();
    const outerNft = ['/usr/sbin/nft', '/sbin/nft'].find((file) => existsSync(file));
    const outerBefore = outerNft ? (await execa(outerNft, ['list', 'ruleset'])).stdout : undefined;

    await host.writeFile('/root/hkt.nft', 'table inet hkt {\n}\n', {
      uid: 0,
      gid: 0,
      mode: 0o600,
    });
    await machine().exec('nft', ['-c', '-f', '/root/hkt.nft']);
    await machine().exec('nft', ['-f', '/root/hkt.nft']);
    expect((await machine().exec('nft', ['list', 'ruleset'])).stdout).toContain('table inet hkt');

    if (outerNft) expect((await execa(outerNft, ['list', 'ruleset'])).stdout).toBe(outerBefore);
  });

  it('has only loopback for a network', async () => {
    const links = await machine().exec('ip', ['-o', 'link', 'show']);
    expect(
      links.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(':')[1]?.trim()),
    ).toEqual(['lo']);
  });

  it('ships pebble, openssl and python3', async () => {
    const { host } = machine();
    expect(await host.stat('/usr/bin/pebble')).toMatchObject({ type: 'file' });
    expect((await host.exec('pebble', ['-h'])).stderr).toContain('Pebble configuration file');
    expect(await host.stat('/usr/bin/pebble-challtestsrv')).toMatchObject({
      type: 'file',
    });
    await machine().exec('openssl', ['version']);
    expect((await machine().exec('python3', ['-c', 'print(6 * 7)'])).stdout).toBe('42\n');
  });
});

describeHost('test/host: hosts booted one after another', () => {
  it('start clean from the pristine image and leave nothing behind', async () => {
    const first = await bootHost();
    try {
      await first.host.writeFile('/root/marker', 'first\n', {
        uid: 0,
        gid: 0,
        mode: 0o644,
      });
      expect((await first.exec('cat', ['/root/marker'])).stdout).toBe('first\n');
    } finally {
      await first.stop();
    }
    expect(existsSync(first.rootDir)).toBe(false);
    expect(existsSync(`/proc/${first.leaderPid}`)).toBe(false);

    const second = await bootHost();
    try {
      expect(await second.host.readFile('/root/marker')).toBeUndefined();
      expect((await second.exec('test', ['!', '-e', '/root/marker'])).exitCode).toBe(0);
    } finally {
      await second.stop();
    }
  });
});

describeHost('test/host: a host that boots degraded', () => {
  // A unit that fails at every boot, enabled in the overlay before booting.
  const prepare = async (rootDir: string): Promise<void> => {
    const units = path.join(rootDir, 'etc/systemd/system');
    await writeFile(path.join(units, 'hkt-broken.service'), '[Service]\nType=oneshot\nExecStart=/bin/false\n');
    await mkdir(path.join(units, 'multi-user.target.wants'), {
      recursive: true,
    });
    await symlink('/etc/systemd/system/hkt-broken.service', path.join(units, 'multi-user.target.wants/hkt-broken.service'));
  };

  it('fails to boot, naming the failed unit, and leaves nothing behind', async () => {
    const name = 'hk-degraded-test';
    const error = await bootHost({ name, prepare }).then(
      (machine) => machine.stop().then(() => undefined),
      (error: unknown) => error,
    );
    expect(error).toMatchObject({ code: 'TEST_HOST_BOOT_FAILED' });
    expect(String((error as Error).message)).toMatch(/failed units: hkt-broken\.service/);
    expect(String((error as Error).message)).toMatch(/systemd-nspawn and console output/);
    expect(readdirSync('/var/tmp').filter((entry) => entry.startsWith(`hostkit-nspawn-${name}-`))).toEqual([]);
  });

  it('boots when that unit is allowed to fail', async () => {
    const machine = await bootHost({
      prepare,
      allowFailedUnits: ['hkt-broken.service'],
    });
    try {
      expect((await machine.host.exec('systemctl', ['is-system-running'])).stdout.trim()).toBe('degraded');
    } finally {
      await machine.stop();
    }
  });
});
