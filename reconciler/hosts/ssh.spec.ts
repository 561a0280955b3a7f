import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireRunLock } from '../apply/lock.js';
import { HelperChannel, helperArgv, helperScript } from './ssh-channel.js';
import {
  formatSshTarget,
  helperCommand,
  helperEndError,
  knownHostsFileOf,
  masterFailure,
  parseSshTarget,
  SshHost,
  sshClientArgs,
  sshMasterArgs,
  sweepAbandoned,
  type SshHostOptions,
  type SshTarget,
} from './ssh.js';

describe('reconciler/hosts/ssh targets', () => {
  it.each<[string, SshTarget]>([
    ['ssh://root@web-1.example.com:2222', { user: 'root', host: 'web-1.example.com', port: 2222 }],
    ['ssh://web-1', { host: 'web-1' }],
    ['ssh://web-1/', { host: 'web-1' }],
    ['deploy@10.0.0.5', { user: 'deploy', host: '10.0.0.5' }],
    ['web_1', { host: 'web_1' }],
    ['ssh://admin@[2001:db8::1]:22', { user: 'admin', host: '2001:db8::1', port: 22 }],
    ['ssh://[::1]', { host: '::1' }],
  ])('parses %s', (text, target) => {
    expect(parseSshTarget(text)).toEqual(target);
  });

  it.each([
    ['', 'is not a host name'],
    ['ssh://', 'is not a host name'],
    ['-oProxyCommand=touch /tmp/x', 'is not a host name'],
    ['ssh://-oProxyCommand=x', 'is not a host name'],
    ['ssh://-l@host', 'is not a user name'],
    ['ssh://root@host:0', 'outside 1-65535'],
    ['ssh://host:99999', 'outside 1-65535'],
    ['ssh://host:ssh', 'is not a port'],
    ['http://host', 'the only scheme is ssh://'],
    ['ssh://us er@host', 'is not a user name'],
    ['host:22', 'is not a host name'],
    ['ssh://host/path', 'is not a host name'],
    ['[::1]', 'needs the ssh:// form'],
    ['ssh://[example.com]', 'is not a host name'],
  ])('refuses %j with SSH_INVALID_TARGET naming it (%s)', (text, why) => {
    let error: unknown;
    try {
      parseSshTarget(text);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'SSH_INVALID_TARGET', data: { target: text } });
    expect((error as Error).message).toContain(`"${text}"`);
    expect((error as Error).message).toContain(why);
  });

  it.each<[SshTarget, string]>([
    [{ host: 'web-1' }, 'ssh://web-1'],
    [{ user: 'root', host: 'web-1', port: 2222 }, 'ssh://root@web-1:2222'],
    [{ user: 'admin', host: '2001:db8::1' }, 'ssh://admin@[2001:db8::1]'],
  ])('formats %j as %s, which parses back to it', (target, text) => {
    expect(formatSshTarget(target)).toBe(text);
    expect(parseSshTarget(text)).toEqual(target);
  });
});

describe('reconciler/hosts/ssh options', () => {
  const options: SshHostOptions = {
    target: { user: 'deploy', host: 'web-1', port: 2222 },
    identityFile: '/keys/id_ed25519',
    knownHostsFile: '/keys/known_hosts',
    configFile: '/keys/config',
    extraOptions: ['Compression=yes'],
    connectTimeoutMs: 4_500,
  };

  it('the master: options in one place, the host last behind "--", authenticates in the background with the host key checked strictly', () => {
    expect(sshMasterArgs(options, '/tmp/hostkit-ssh-x/control').join(' ')).toBe(
      '-F /keys/config -o BatchMode=yes -o ControlPath=/tmp/hostkit-ssh-x/control -o StrictHostKeyChecking=yes ' +
        '-o UserKnownHostsFile=/keys/known_hosts -i /keys/id_ed25519 -o IdentitiesOnly=yes -o Compression=yes -l deploy -p 2222 ' +
        '-o ControlMaster=yes -o ControlPersist=30 -o LogLevel=DEBUG1 -o ConnectTimeout=5 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 ' +
        '-o ClearAllForwardings=yes -N -- web-1',
    );
    expect(sshMasterArgs({ target: { host: 'web-1' }, acceptNewHostKey: true }, '/c')).toEqual(expect.arrayContaining(['StrictHostKeyChecking=accept-new']));
  });

  it('a client rides on the master only: never a login of its own, the command after the host', () => {
    const args = sshClientArgs(options, '/c', ['-W', '127.0.0.1:80']);
    expect(args.slice(-8)).toEqual(['-o', 'ControlMaster=no', '-o', 'ProxyCommand=false', '-W', '127.0.0.1:80', '--', 'web-1']);
    expect(args).toEqual(expect.arrayContaining(['ControlPath=/c']));
    expect(sshClientArgs(options, '/c', ['-T'], 'exec python3').slice(-3)).toEqual(['--', 'web-1', 'exec python3']);
  });

  it('the helper command is one shell string that the login shell splits back into python3 -I -c SCRIPT-READER (sudo -n in front on request)', () => {
    for (const sudo of [false, true]) {
      const command = helperCommand(sudo);
      expect(command.startsWith(sudo ? 'exec sudo -n python3 -I -c ' : 'exec python3 -I -c ')).toBe(true);
      const words = execFileSync('sh', ['-c', command.replace(/^exec /, `printf '%s\\0' `)], { encoding: 'utf8' })
        .split('\0')
        .slice(0, -1);
      expect(words).toEqual([...(sudo ? ['sudo', '-n'] : []), ...helperArgv()]);
    }
  });
});

describe('reconciler/hosts/ssh refusals', () => {
  const options: SshHostOptions = { target: { user: 'root', host: 'web-1' }, knownHostsFile: '/keys/known_hosts' };
  const keyLine = 'debug1: Server host key: ssh-ed25519 SHA256:BDcTRshQWE5+m0nXZDCfRZAvH1e44xgOkuGuz5xpDmw\n';

  it('an unknown host key: SSH_HOST_KEY_UNKNOWN naming the host, the known_hosts file and the presented key', () => {
    const log = `debug1: Authenticating to web-1:22 as 'root'\n${keyLine}No ED25519 host key is known for web-1 and you have requested strict checking.\nHost key verification failed.\n`;
    const error = masterFailure(options, log, 'ssh exited 255');
    expect(error).toMatchObject({
      code: 'SSH_HOST_KEY_UNKNOWN',
      retryable: false,
      data: { host: 'web-1', fingerprint: 'SHA256:BDcTRshQWE5+m0nXZDCfRZAvH1e44xgOkuGuz5xpDmw', keyType: 'ssh-ed25519' },
    });
    expect(error.message).toMatch(
      /^The host key of ssh:\/\/root@web-1 \(ssh-ed25519 SHA256:BDcTRshQWE5\+m0nXZDCfRZAvH1e44xgOkuGuz5xpDmw\) is not in \/keys\/known_hosts/,
    );
  });

  it('a changed host key: SSH_HOST_KEY_CHANGED with the presented key, even with accept-new', () => {
    const log = `${keyLine}@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key for web-1 has changed and you have requested strict checking.\nHost key verification failed.\n`;
    const error = masterFailure({ ...options, acceptNewHostKey: true }, log, 'ssh exited 255');
    expect(error).toMatchObject({
      code: 'SSH_HOST_KEY_CHANGED',
      retryable: false,
      data: { fingerprint: 'SHA256:BDcTRshQWE5+m0nXZDCfRZAvH1e44xgOkuGuz5xpDmw' },
    });
    expect(error.message).toContain('changed: it presented ssh-ed25519 SHA256:BDcTRshQWE5+m0nXZDCfRZAvH1e44xgOkuGuz5xpDmw');
  });

  it.each([
    ['root@web-1: Permission denied (publickey).', false],
    ['ssh: connect to host web-1 port 22: Connection refused', true],
  ])('anything else ssh says is SSH_CONNECT_FAILED with its words, without its debug lines (%s)', (said, retryable) => {
    const error = masterFailure(options, `debug1: Reading configuration data /etc/ssh/ssh_config\n${keyLine}${said}\n`, 'ssh exited 255');
    expect(error).toMatchObject({ code: 'SSH_CONNECT_FAILED', retryable, message: `Could not open an SSH connection to ssh://root@web-1: ${said}` });
  });

  it('a helper that cannot start names python3 when it is missing, sudo when it refused; a session that ended later is a lost connection', () => {
    expect(helperEndError('ssh:web-1', { code: 127, signal: null, stderr: 'sh: 1: exec: python3: not found', started: false })).toMatchObject({
      code: 'SSH_REMOTE_HELPER_FAILED',
      data: { missing: 'python3' },
      message: expect.stringMatching(/^HostKit's helper could not start on ssh:web-1: python3 is not installed there/),
    });
    expect(helperEndError('ssh:web-1', { code: 1, signal: null, stderr: 'sudo: a password is required', started: false }).message).toBe(
      "HostKit's helper could not start on ssh:web-1: sudo -n refused: sudo: a password is required",
    );
    expect(helperEndError('ssh:web-1', { code: 255, signal: null, stderr: 'Connection to web-1 closed by remote host.', started: true })).toMatchObject({
      code: 'SSH_CONNECT_FAILED',
      retryable: true,
    });
  });
});

// The helper itself, run by this machine's python3 with the same boot line as
// over SSH: everything after the transport is the same code path.
const python = existsSync('/usr/bin/python3') || existsSync('/usr/local/bin/python3');

async function helperHost(env: NodeJS.ProcessEnv = process.env): Promise<{ host: SshHost; child: ChildProcess }> {
  const child = spawn('/bin/sh', ['-c', helperCommand(false)], { stdio: 'pipe', env });
  const channel = await HelperChannel.start(child, 'ssh:spec', (end) => helperEndError('ssh:spec', end));
  return { host: new SshHost({ name: 'ssh:spec', target: { host: 'spec' }, channel }), child };
}

describe.skipIf(!python)('reconciler/hosts/ssh helper protocol (python3 on this machine)', () => {
  let host: SshHost;
  let dir: string;
  const uid = process.getuid!();
  const gid = process.getgid!();

  beforeAll(async () => {
    host = (await helperHost()).host;
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-spec-'));
  });
  afterAll(async () => {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('requests issued together go out in one write: one round trip for 50 stats, one per request when each waits for the last', async () => {
    const before = host.stats();
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => host.stat(`${dir}/missing-${i}`)));
    expect(all).toEqual(Array.from({ length: 50 }, () => undefined));
    const batched = host.stats();
    expect(batched.requests - before.requests).toBe(50);
    expect(batched.roundTrips - before.roundTrips).toBe(1);
    for (let i = 0; i < 3; i++) await host.stat(dir);
    expect(host.stats().roundTrips - batched.roundTrips).toBe(3);
    expect(host.stats().processes).toBe(0);
  });

  it('says the host name the kernel has (from its hello: no round trip), and answers requests in any order (a quick stat passes a running command)', async () => {
    const before = host.stats();
    expect(await host.hostname()).toBe(os.hostname());
    expect(host.stats()).toEqual(before);
    const order: string[] = [];
    await Promise.all([host.exec('sleep', ['0.3']).then(() => order.push('exec')), host.stat(dir).then(() => order.push('stat'))]);
    expect(order).toEqual(['stat', 'exec']);
  });

  it('writes atomically with owner and mode, leaves no temporary file, reads, stats, lists and removes', async () => {
    await host.mkdir(`${dir}/w`, { uid, gid, mode: 0o750 });
    await host.mkdir(`${dir}/w`, { uid, gid, mode: 0o750 });
    await host.writeFile(`${dir}/w/a.conf`, 'one\n', { uid: 1234, gid: 4321, mode: 0o640 });
    await host.writeFile(`${dir}/w/a.conf`, Buffer.from([0, 255, 10]), { uid: 1234, gid: 4321, mode: 0o640 });
    await host.flush();
    expect(await readFile(`${dir}/w/a.conf`)).toEqual(Buffer.from([0, 255, 10]));
    expect(await host.readFile(`${dir}/w/a.conf`)).toEqual(Buffer.from([0, 255, 10]));
    expect(await host.stat(`${dir}/w/a.conf`)).toEqual({ type: 'file', mode: 0o640, uid: 1234, gid: 4321, size: 3 });
    expect(await host.stat(`${dir}/w`)).toMatchObject({ type: 'directory', mode: 0o750 });
    expect(await host.readdir(`${dir}/w`)).toEqual(['a.conf']);
    await host.setOwnership(`${dir}/w/a.conf`, { uid, gid, mode: 0o600 });
    await host.flush();
    expect((await stat(`${dir}/w/a.conf`)).mode & 0o7777).toBe(0o600);
    await host.remove(`${dir}/w/a.conf`);
    await host.remove(`${dir}/w/a.conf`);
    await host.remove(`${dir}/w`);
    expect(await host.stat(`${dir}/w`)).toBeUndefined();
    expect(await host.readFile(`${dir}/w/a.conf`)).toBeUndefined();
    expect(await host.readdir(`${dir}/w`)).toBeUndefined();
    await expect(host.readFile('relative/path')).rejects.toMatchObject({ code: 'HOST_PATH_NOT_ABSOLUTE' });
  });

  it('a write that fails leaves the target as it was and no temporary file; errors carry the errno like node:fs', async () => {
    await writeFile(`${dir}/keep`, 'before\n');
    await host.writeFile(`${dir}/no-such-dir/x`, 'x', { uid, gid, mode: 0o644 });
    await expect(host.flush()).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'write',
      path: expect.stringContaining('no-such-dir'),
    });
    // The target is a directory: rename fails after the temporary file was written.
    await mkdir(`${dir}/is-a-dir`);
    await host.writeFile(`${dir}/is-a-dir`, 'x', { uid, gid, mode: 0o644 });
    await expect(host.flush()).rejects.toMatchObject({ code: 'EISDIR' });
    expect((await readdir(dir)).filter((n) => n.includes('.hostkit-'))).toEqual([]);
    expect(await readFile(`${dir}/keep`, 'utf8')).toBe('before\n');
  });

  it('a managed path goes through no symlink: a symlinked directory or last component fails with HOST_PATH_SYMLINK, for reads and writes', async () => {
    await mkdir(`${dir}/real`);
    await writeFile(`${dir}/real/target`, 'inside\n');
    await symlink(`${dir}/real`, `${dir}/linked-dir`);
    await symlink(`${dir}/real/target`, `${dir}/real/linked-file`);
    const own = { uid, gid, mode: 0o644 };
    await expect(host.readFile(`${dir}/linked-dir/target`, { managed: true })).rejects.toMatchObject({
      code: 'HOST_PATH_SYMLINK',
      data: { path: `${dir}/linked-dir/target`, symlink: `${dir}/linked-dir` },
    });
    // Void ops: the refusal is told by the next flush (or value request), naming the op.
    await host.writeFile(`${dir}/linked-dir/new`, 'x', own, { managed: true });
    await expect(host.flush()).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { op: 'write', symlink: `${dir}/linked-dir` } });
    await host.mkdir(`${dir}/linked-dir/sub`, own, { managed: true });
    await expect(host.flush()).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { op: 'mkdir' } });
    await host.setOwnership(`${dir}/linked-dir/target`, own, { managed: true });
    await expect(host.flush()).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { op: 'chown' } });
    await host.remove(`${dir}/linked-dir/target`, { managed: true });
    await expect(host.flush()).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { op: 'remove' } });
    expect(await readFile(`${dir}/real/target`, 'utf8')).toBe('inside\n');
    await expect(host.readFile(`${dir}/real/linked-file`, { managed: true })).rejects.toMatchObject({
      code: 'HOST_PATH_SYMLINK',
      data: { symlink: `${dir}/real/linked-file` },
    });
    expect((await host.readFile(`${dir}/real/target`, { managed: true }))?.toString()).toBe('inside\n');
    expect(await host.readFile(`${dir}/missing/x`, { managed: true })).toBeUndefined();
    // Unmanaged reads follow links (HostKit's own state); writes replace the link, never write through it.
    expect((await host.readFile(`${dir}/linked-dir/target`))?.toString()).toBe('inside\n');
    await host.writeFile(`${dir}/real/linked-file`, 'replaced\n', own);
    await host.flush();
    expect((await lstat(`${dir}/real/linked-file`)).isFile()).toBe(true);
    expect(await readFile(`${dir}/real/target`, 'utf8')).toBe('inside\n');
    expect(await readdir(`${dir}/real`)).toEqual(expect.arrayContaining(['linked-file', 'target']));
  });

  it('appends in order, creating the file with owner and mode, and does not follow a symlink in the last component', async () => {
    await host.appendFile(`${dir}/events.jsonl`, 'one\n', { uid, gid, mode: 0o640 });
    await host.appendFile(`${dir}/events.jsonl`, Buffer.from('two\n'), { uid, gid, mode: 0o640 }, { sync: true });
    await host.flush();
    expect(await readFile(`${dir}/events.jsonl`, 'utf8')).toBe('one\ntwo\n');
    expect((await stat(`${dir}/events.jsonl`)).mode & 0o777).toBe(0o640);
    await writeFile(`${dir}/untouched`, 'untouched\n');
    await symlink(`${dir}/untouched`, `${dir}/events-link`);
    await host.appendFile(`${dir}/events-link`, 'x\n', { uid, gid, mode: 0o600 });
    await expect(host.flush()).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await readFile(`${dir}/untouched`, 'utf8')).toBe('untouched\n');
  });

  it('switches a symlink atomically and reads it back as written', async () => {
    await mkdir(`${dir}/releases/a`, { recursive: true });
    await mkdir(`${dir}/releases/b`, { recursive: true });
    expect(await host.readlink(`${dir}/current`)).toBeUndefined();
    await host.symlink('releases/a', `${dir}/current`);
    await host.symlink('releases/b', `${dir}/current`);
    expect(await host.readlink(`${dir}/current`)).toBe('releases/b');
    await host.flush();
    expect(await readdir(`${dir}/releases/a`)).toEqual([]);
    expect(await host.readlink(`${dir}/releases`)).toBeUndefined();
  });

  it('runs commands with exit codes, input, extra environment, working directory; 128 + N when killed by a signal', async () => {
    expect(await host.exec('sh', ['-c', 'echo out; echo err >&2; exit 3'])).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await host.exec('cat', [], { input: 'hello\n' })).stdout).toBe('hello\n');
    expect((await host.exec('true', [], { input: 'x'.repeat(1 << 20) })).exitCode).toBe(0);
    expect((await host.exec('wc', ['-c'], { input: Buffer.alloc(3 << 20, 1) })).stdout.trim()).toBe(String(3 << 20));
    expect((await host.exec('sh', ['-c', 'echo "$HK_TEST_VALUE" "$SYSTEMD_PAGER" "${PATH:+path}"'], { env: { HK_TEST_VALUE: 'v 1' } })).stdout).toBe(
      'v 1  path\n',
    );
    expect((await host.exec('pwd', [], { cwd: dir })).stdout).toBe(`${dir}\n`);
    expect((await host.exec('sh', ['-c', 'kill -9 $$'])).exitCode).toBe(137);
    await expect(host.exec('hostkit-no-such-command', [])).rejects.toMatchObject({
      code: 'EXEC_FAILED',
      message: expect.stringMatching(/^Could not run hostkit-no-such-command on ssh:spec: ENOENT/),
    });
    await expect(host.exec('pwd', [], { cwd: `${dir}/no-such-dir` })).rejects.toMatchObject({ code: 'EXEC_FAILED' });
  });

  it('runs commands concurrently: two half-second sleeps take about half a second', async () => {
    const started = Date.now();
    await Promise.all([host.exec('sleep', ['0.5']), host.exec('sleep', ['0.5'])]);
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('a timeout ends the whole process group: SIGTERM, then SIGKILL after the grace, grandchildren too', async () => {
    await expect(host.exec('sleep', ['5'], { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'EXEC_TIMED_OUT',
      retryable: true,
      message: 'sleep 5 on ssh:spec timed out after 100 ms; its process group got SIGTERM',
    });
    const script = `trap "" TERM; sleep 300 & echo $! > ${dir}/grandchild; wait`;
    const started = Date.now();
    await expect(host.exec('sh', ['-c', script], { timeoutMs: 300, killGraceMs: 400 })).rejects.toMatchObject({
      code: 'EXEC_TIMED_OUT',
      data: { timeoutMs: 300, killGraceMs: 400, signal: 'SIGKILL' },
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(Date.now() - started).toBeLessThan(2_500);
    const grandchild = Number(await readFile(`${dir}/grandchild`, 'utf8'));
    expect(await readFile(`/proc/${grandchild}/stat`, 'utf8').catch(() => 'gone')).toMatch(/^gone$|^\d+ \(sleep\) [ZX]/);
    const background = Date.now();
    await expect(host.exec('sh', ['-c', 'sleep 300 & exit 0'], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'EXEC_TIMED_OUT' });
    expect(Date.now() - background).toBeLessThan(1_500);
  });

  it('keeps the tail of each stream past the limit, says how much was cut, and cuts at a character', async () => {
    const script = 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; printf "é"; echo end; echo err-tail >&2';
    const result = await host.exec('sh', ['-c', script], { maxOutputBytes: 4 });
    expect(result.stdout).toMatch(/^\[\.\.\. \d+ bytes cut \.\.\.\]\nend\n$/);
    expect(result.stderr).toBe('[... 5 bytes cut ...]\nail\n');
    expect(result.truncated!.stdout + 4).toBe(Buffer.byteLength(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join('') + 'é' + 'end\n'));
    const big = await host.exec('head', ['-c', String(3 * 1024 * 1024), '/dev/zero']);
    expect(big.truncated).toEqual({ stdout: 2 * 1024 * 1024, stderr: 0 });
    expect(big.stdout.length).toBe(1024 * 1024 + '[... 2097152 bytes cut ...]\n'.length);
  });
});

describe.skipIf(!python || process.getuid?.() !== 0)('reconciler/hosts/ssh and the run lock (python3 on this machine, as root)', () => {
  it('the run lock on a host without its state directory: the pipelined append fails, is told, the directory is made and the lock taken', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-lock-'));
    const { host } = await helperHost();
    try {
      const state = path.join(dir, 'var/lib/hostkit');
      const held = await acquireRunLock(host, state, { timeoutMs: 0, command: 'hostkit reconcile' });
      expect((await stat(state)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(state, 'run.lock'))).mode & 0o777).toBe(0o600);
      await held.release();
      await host.flush();
      // The next one finds it there: no directory looked at.
      const again = await acquireRunLock(host, state, { timeoutMs: 0, command: 'hostkit reconcile' });
      await again.release();
    } finally {
      await host.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!python)('reconciler/hosts/ssh helper lifetime (python3 on this machine)', () => {
  it('a lock is exclusive, waits up to waitMs, and is free again at once when its holder goes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-lock-'));
    const a = await helperHost();
    const b = await helperHost();
    try {
      const held = await a.host.lock(`${dir}/run.lock`, { waitMs: 0 });
      expect(held).toBeDefined();
      expect((await stat(`${dir}/run.lock`)).mode & 0o777).toBe(0o600);
      expect(await b.host.lock(`${dir}/run.lock`, { waitMs: 0 })).toBeUndefined();
      const started = Date.now();
      expect(await b.host.lock(`${dir}/run.lock`, { waitMs: 300 })).toBeUndefined();
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      const waiting = b.host.lock(`${dir}/run.lock`, { waitMs: 5_000 });
      await new Promise((r) => setTimeout(r, 100));
      await held!.release();
      const second = await waiting;
      expect(second).toBeDefined();
      // Its holder dies (SIGKILL: nothing runs on its side): free at once.
      b.child.kill('SIGKILL');
      expect(await a.host.lock(`${dir}/run.lock`, { waitMs: 2_000 })).toBeDefined();
      await expect(b.host.stat(dir)).rejects.toMatchObject({ code: 'SSH_CONNECT_FAILED' });
      await expect(a.host.lock(`${dir}/missing-dir/x.lock`, { waitMs: 0 })).rejects.toMatchObject({ code: 'LOCK_FAILED' });
    } finally {
      await a.host.close();
      await b.host.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('requests in flight when the helper dies reject with SSH_CONNECT_FAILED, as do later ones; close is idempotent', async () => {
    const { host, child } = await helperHost();
    const running = host.exec('sleep', ['10']);
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await expect(running).rejects.toMatchObject({ code: 'SSH_CONNECT_FAILED', message: expect.stringContaining('ssh:spec') });
    await expect(host.stat('/')).rejects.toMatchObject({ code: 'SSH_CONNECT_FAILED' });
    await host.close();
    await host.close();
  });

  it('without python3 the helper does not start, and the error names python3', async () => {
    await expect(helperHost({ PATH: '/nonexistent' })).rejects.toMatchObject({
      code: 'SSH_REMOTE_HELPER_FAILED',
      data: { missing: 'python3' },
      message: expect.stringContaining('python3 is not installed there'),
    });
  });
});

describe.skipIf(!python)('reconciler/hosts/ssh pipelined void ops (python3 on this machine)', () => {
  let dir: string;
  const own = { uid: process.getuid!(), gid: process.getgid!(), mode: 0o644 };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-pipe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('100 writes then a read cost one round trip, and the read sees the last write', async () => {
    const { host } = await helperHost();
    try {
      const before = host.stats();
      for (let i = 0; i < 100; i++) await host.writeFile(`${dir}/counter`, `${i}\n`, own);
      expect((await host.readFile(`${dir}/counter`))?.toString()).toBe('99\n');
      expect(host.stats().requests - before.requests).toBe(101);
      expect(host.stats().roundTrips - before.roundTrips).toBe(1);
      // A command sees them too: it runs after every void op sent before it.
      await host.mkdir(`${dir}/made`, own);
      await host.writeFile(`${dir}/made/file`, 'made\n', own);
      expect((await host.exec('cat', [`${dir}/made/file`])).stdout).toBe('made\n');
    } finally {
      await host.close();
    }
  });

  it('flush with nothing pending costs no round trip; with writes pending, one', async () => {
    const { host } = await helperHost();
    try {
      const before = host.stats();
      await host.flush();
      expect(host.stats()).toEqual(before);
      await host.writeFile(`${dir}/flushed`, 'x', own);
      await host.writeFile(`${dir}/flushed`, 'y', own);
      await host.flush();
      expect(host.stats().roundTrips - before.roundTrips).toBe(1);
      expect(host.stats().requests - before.requests).toBe(2);
      expect(await readFile(`${dir}/flushed`, 'utf8')).toBe('y');
      await host.flush();
      expect(host.stats().roundTrips - before.roundTrips).toBe(1);
    } finally {
      await host.close();
    }
  });

  it('appends stay in the order they were sent', async () => {
    const { host } = await helperHost();
    try {
      const lines = Array.from({ length: 300 }, (_, i) => `event ${i}\n`);
      for (const [i, line] of lines.entries()) await host.appendFile(`${dir}/journal.jsonl`, line, own, { sync: i % 50 === 0 });
      await host.flush();
      expect(await readFile(`${dir}/journal.jsonl`, 'utf8')).toBe(lines.join(''));
    } finally {
      await host.close();
    }
  });

  it('a failed write: nothing sent after it runs; value requests reject naming its path and errno until flush acknowledges it, then the channel works again', async () => {
    const { host } = await helperHost();
    try {
      await host.writeFile(`${dir}/keep`, 'before\n', own);
      await host.writeFile(`${dir}/no-such-dir/x`, 'x', own);
      await host.writeFile(`${dir}/after-failure`, 'must not exist\n', own);
      await host.remove(`${dir}/keep`);
      const running = host.exec('touch', [`${dir}/touched`]);
      const told = {
        code: 'ENOENT',
        syscall: 'write',
        path: `${dir}/no-such-dir/x`,
        message: expect.stringMatching(
          /^ENOENT: .*, write '.*no-such-dir\/x' on ssh:spec \(write sent earlier without waiting for its answer; nothing sent after it was run\)$/,
        ),
      };
      await expect(running).rejects.toMatchObject(told);
      // Not acknowledged by a value request (its caller may swallow it): the next one is told too, and nothing is sent.
      const sent = host.stats().requests;
      await expect(host.stat(dir)).rejects.toMatchObject(told);
      await host.writeFile(`${dir}/after-told`, 'dropped\n', own);
      expect(host.stats().requests).toBe(sent);
      await expect(host.flush()).rejects.toMatchObject(told);
      // Acknowledged: the channel runs requests again; nothing sent after the failed write ran.
      expect(await host.stat(`${dir}/after-failure`)).toBeUndefined();
      expect(await host.stat(`${dir}/after-told`)).toBeUndefined();
      expect(existsSync(`${dir}/touched`)).toBe(false);
      expect(await readFile(`${dir}/keep`, 'utf8')).toBe('before\n');
      await host.writeFile(`${dir}/after-ack`, 'ok\n', own);
      expect((await host.readFile(`${dir}/after-ack`))?.toString()).toBe('ok\n');

      // A second failure, known before anything else is asked: later void ops are not even sent, value requests are told.
      await host.setOwnership(`${dir}/missing-file`, own);
      await new Promise((resolve) => setTimeout(resolve, 200)); // its answer is back
      const before = host.stats().requests;
      await host.writeFile(`${dir}/after-second`, 'x', own);
      await expect(host.readdir(dir)).rejects.toMatchObject({ code: 'ENOENT', syscall: 'chown', path: `${dir}/missing-file` });
      expect(host.stats().requests).toBe(before);
      await expect(host.flush()).rejects.toMatchObject({ syscall: 'chown' });
      await host.flush(); // told once
      expect(await host.stat(`${dir}/after-second`)).toBeUndefined();
      expect(await host.stat(dir)).toMatchObject({ type: 'directory' });
    } finally {
      await host.close();
    }
  });

  it('close waits for the writes sent, and rejects (closed all the same) with a failure not told yet', async () => {
    const ok = await helperHost();
    await ok.host.writeFile(`${dir}/at-close`, 'closing\n', own);
    await ok.host.close();
    expect(await readFile(`${dir}/at-close`, 'utf8')).toBe('closing\n');

    const { host, child } = await helperHost();
    await host.writeFile(`${dir}/no-such-dir/at-close`, 'x', own);
    await expect(host.close()).rejects.toMatchObject({ code: 'ENOENT', path: `${dir}/no-such-dir/at-close` });
    expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
    await expect(host.stat(dir)).rejects.toMatchObject({ code: 'SSH_CONNECT_FAILED' });
  });

  it('a lock release after a failed write rejects with it, and the lock is free all the same', async () => {
    const a = await helperHost();
    const b = await helperHost();
    try {
      const held = await a.host.lock(`${dir}/run.lock`, { waitMs: 0 });
      await a.host.writeFile(`${dir}/no-such-dir/y`, 'x', own);
      await expect(held!.release()).rejects.toMatchObject({ code: 'ENOENT', path: `${dir}/no-such-dir/y` });
      expect(await b.host.lock(`${dir}/run.lock`, { waitMs: 2_000 })).toBeDefined();
    } finally {
      await a.host.close();
      await b.host.close();
    }
  });

  it('the connection lost with writes unanswered: flush and close reject with SSH_CONNECT_FAILED', async () => {
    const { host, child } = await helperHost();
    await host.writeFile(`${dir}/lost`, 'x', own);
    child.kill('SIGKILL');
    await expect(host.flush()).rejects.toMatchObject({ code: 'SSH_CONNECT_FAILED' });
    await expect(host.close()).rejects.toMatchObject({ code: 'SSH_CONNECT_FAILED' });
  });
});

/** Runs the helper in `mode` under /bin/sh as sshd would, with `input` after the script; resolves with its output and status. */
function helperMode(
  mode: string[],
  input: Buffer | ((stdin: NodeJS.WritableStream) => void),
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const child = spawn('/bin/sh', ['-c', helperCommand(false, mode)], { stdio: 'pipe' });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdin.write(helperScript());
  if (typeof input === 'function') input(child.stdin);
  else child.stdin.end(input);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr })));
}

describe.skipIf(!python)('reconciler/hosts/ssh helper modes: receive and relay (python3 on this machine)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-modes-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('receive writes the stream to the file with owner and mode, replacing it whole, and prints its sha256', async () => {
    const file = path.join(dir, 'package.deb');
    await writeFile(file, 'old');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a);
    const { code, stdout } = await helperMode(['receive', file, String(process.getuid!()), String(process.getgid!()), '640', String(bytes.length)], bytes);
    expect(code).toBe(0);
    expect(stdout.toString()).toBe(`${createHash('sha256').update(bytes).digest('hex')}\n`);
    expect((await readFile(file)).equals(bytes)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect((await readdir(dir)).filter((n) => n.includes('.hostkit-'))).toEqual([]);
  });

  it('a stream that ends short leaves the file as it was, and no temporary file beside it', async () => {
    const file = path.join(dir, 'short.deb');
    await writeFile(file, 'old');
    const { code, stderr } = await helperMode(['receive', file, String(process.getuid!()), String(process.getgid!()), '644', '1000'], Buffer.alloc(10));
    expect(code).toBe(1);
    expect(stderr).toContain('the stream ended after 10 of 1000 bytes');
    expect(await readFile(file, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((n) => n.includes('.hostkit-'))).toEqual([]);
  });

  it('relay carries its input to a Unix socket and the answer back, and says so when nothing listens there', async () => {
    const socket = path.join(dir, 'echo.sock');
    const server = net.createServer((c) => c.on('data', (d: Buffer) => c.write(`echo:${d.toString()}`)).on('end', () => c.end()));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const { code, stdout } = await helperMode(['relay', socket], Buffer.from('hello'));
      expect(code).toBe(0);
      expect(stdout.toString()).toBe('echo:hello');
    } finally {
      server.close();
    }
    const refused = await helperMode(['relay', path.join(dir, 'none.sock')], Buffer.alloc(0));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`relay: cannot connect to ${path.join(dir, 'none.sock')}`);
  });
});

describe('reconciler/hosts/ssh private directories', () => {
  it('sweepAbandoned removes the directories of processes that are gone, and nothing else', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'hostkit-sweep-'));
    try {
      const gone = spawn(process.execPath, ['-e', '0']);
      await new Promise((resolve) => gone.once('exit', resolve));
      const make = async (name: string, owner?: number) => {
        await mkdir(path.join(parent, name));
        if (owner !== undefined) await writeFile(path.join(parent, name, 'owner'), `${owner}\n`);
      };
      await make('hostkit-ssh-dead01', gone.pid!);
      await make('hostkit-ssh-live01', process.pid);
      await make('hostkit-ssh-nownr1');
      await make('hostkit-ssh-test-abcdef', gone.pid!); // a test's mkdtemp, not HostKit's
      await make('other-dead01', gone.pid!);
      expect(await sweepAbandoned(parent)).toEqual([path.join(parent, 'hostkit-ssh-dead01')]);
      expect((await readdir(parent)).sort()).toEqual(['hostkit-ssh-live01', 'hostkit-ssh-nownr1', 'hostkit-ssh-test-abcdef', 'other-dead01']);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('knownHostsFileOf: the option, else the UserKnownHostsFile ssh_config chose for that host', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-kh-'));
    try {
      const config = path.join(dir, 'ssh_config');
      await writeFile(config, 'Host web-1\n  UserKnownHostsFile /keys/prod_known_hosts\n');
      expect(await knownHostsFileOf({ target: { host: 'web-1' }, configFile: config })).toBe('/keys/prod_known_hosts');
      expect(await knownHostsFileOf({ target: { host: 'web-1' }, configFile: config, knownHostsFile: '/x/kh' })).toBe('/x/kh');
      expect(await knownHostsFileOf({ target: { host: 'web-2' }, configFile: config })).toBe(path.join(os.homedir(), '.ssh/known_hosts'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
