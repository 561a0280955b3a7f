// sshd in a booted test host, reached from this machine as an operator's
// laptop would: real ed25519 keys (a fresh host key per host, a client key
// made here), a known_hosts file holding the host's key, and an ssh_config
// whose ProxyCommand carries the connection into the host's network namespace
// (the host has a private network holding only loopback).
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { SshTarget } from '../../reconciler/hosts/ssh.js';
import type { TestHost } from './machine.js';
import { eventually } from './reconcile.js';

export interface SshAccess {
  /** { user: 'root' (or the user asked for), host: testHost.hostname } */
  target: SshTarget;
  /** A fresh ed25519 key on this machine (0600), authorized inside. */
  identityFile: string;
  /** Holds the host's key (trusted). */
  knownHostsFile: string;
  /** ssh_config with `Host <hostname>`: ProxyCommand into the host's network namespace, IdentityFile, UserKnownHostsFile, StrictHostKeyChecking yes. */
  configFile: string;
  /** SHA256:... of the host's key. */
  hostKeyFingerprint: string;
  /** A new host key inside, sshd restarted; returns its fingerprint (known_hosts keeps the old one). */
  rotateHostKey(): Promise<string>;
  /** Removes the local temp dir (sshd keeps running inside). */
  dispose(): Promise<void>;
}

// ssh's ProxyCommand, run by this machine's node inside the host's network
// namespace only: sshd's port on the host's loopback, nothing but the stream on stdout.
const PROXY = `const socket = require('node:net').connect(22, '127.0.0.1');
socket.on('error', (e) => { process.stderr.write('proxy: ' + e.message + '\\n'); process.exit(1); });
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on('close', () => process.exit(0));
`;

// A login for `user` with the key on stdin; anyone but root may also run `sudo -n` (where sudo is installed).
function authorizeScript(user: string): string {
  const home = user === 'root' ? '/root' : `/home/${user}`;
  return `set -e
if ! id -u ${user} >/dev/null 2>&1; then useradd --create-home --shell /bin/bash ${user}; fi
if [ ${user} != root ] && [ -d /etc/sudoers.d ]; then
  echo '${user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-hostkit-test-${user}
  chmod 0440 /etc/sudoers.d/90-hostkit-test-${user}
fi
install -d -m 0700 -o ${user} -g ${user} ${home}/.ssh
cat >> ${home}/.ssh/authorized_keys
chown ${user}:${user} ${home}/.ssh/authorized_keys
chmod 0600 ${home}/.ssh/authorized_keys
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\\nPasswordAuthentication no\\nKbdInteractiveAuthentication no\\nUseDNS no\\n' > /etc/ssh/sshd_config.d/hostkit-test.conf
systemctl unmask --quiet ssh.service ssh.socket
`;
}

// A fresh ed25519 host key (and no other), sshd (re)started with it; prints the public key.
const NEW_HOST_KEY = `set -e
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
ssh-keygen -q -t ed25519 -N '' -C '' -f /etc/ssh/ssh_host_ed25519_key
systemctl restart ssh.service
cat /etc/ssh/ssh_host_ed25519_key.pub
`;

/** SHA256:BASE64 (unpadded) of a public key line's key blob, as ssh prints it. */
export function keyFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

async function newHostKey(testHost: TestHost): Promise<string> {
  const publicKey = (await testHost.exec('sh', ['-c', NEW_HOST_KEY])).stdout.trim();
  const listening = await eventually(async () => (await testHost.host.exec('bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/22'])).exitCode === 0, 10_000, 100);
  if (!listening) throw new Error(`sshd does not listen on ${testHost.machine}: ${(await testHost.host.exec('systemctl', ['status', 'ssh.service'])).stdout}`);
  return publicKey;
}

/**
 * Starts sshd in the booted test host with a fresh host key (once per boot:
 * a later call keeps the key sshd has); returns what a client needs. A user
 * other than root is created if missing (with passwordless sudo where sudo is
 * installed). The ProxyCommand names the host's current PID 1: after
 * testHost.reboot(), call sshInto again.
 */
export async function sshInto(testHost: TestHost, options: { user?: string } = {}): Promise<SshAccess> {
  const user = options.user ?? 'root';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-access-'));
  const identityFile = path.join(dir, 'id_ed25519');
  const knownHostsFile = path.join(dir, 'known_hosts');
  const configFile = path.join(dir, 'ssh_config');
  const proxy = path.join(dir, 'proxy.cjs');
  let hostKeyFingerprint: string;
  try {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `hostkit-test@${testHost.machine}`, '-f', identityFile]);
    await testHost.exec('sh', ['-c', authorizeScript(user)], { input: await readFile(`${identityFile}.pub`) });
    // The first call on a boot makes the host key; a later one (another user) trusts the key sshd has.
    const running = (await testHost.host.exec('systemctl', ['is-active', '--quiet', 'ssh.service'])).exitCode === 0;
    const hostKey = running ? (await testHost.exec('cat', ['/etc/ssh/ssh_host_ed25519_key.pub'])).stdout.trim() : await newHostKey(testHost);
    hostKeyFingerprint = keyFingerprint(hostKey);
    await writeFile(knownHostsFile, `${testHost.hostname} ${hostKey.split(/\s+/).slice(0, 2).join(' ')}\n`, { mode: 0o600 });
    await writeFile(proxy, PROXY, { mode: 0o600 });
    await writeFile(
      configFile,
      [
        `Host ${testHost.hostname}`,
        `  User ${user}`,
        `  ProxyCommand nsenter -t ${testHost.leaderPid} -n -- ${process.execPath} ${proxy}`,
        `  IdentityFile ${identityFile}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${knownHostsFile}`,
        '  GlobalKnownHostsFile /dev/null',
        '  StrictHostKeyChecking yes',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await chmod(dir, 0o700);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    target: { user, host: testHost.hostname },
    identityFile,
    knownHostsFile,
    configFile,
    hostKeyFingerprint,
    rotateHostKey: async () => keyFingerprint(await newHostKey(testHost)),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
