import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { driversWithBrokenSudoers } from '../support/broken-sudoers.js';
import { testKey } from '../support/ssh-keys.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, HOST_NAME, reconcile, repo } from './reconcile.js';

// Login access on a real host (reconciler/drivers/account: kinds authorizedkeys and
// sudoers). The test image has sudo but not openssh-server: sshd's StrictModes is
// checked by walking the modes it checks, the key file is read by this machine's
// ssh-keygen; sudo rules go through the real visudo and sudo -l, and with visudo
// moved away the run must fail clearly and roll back.

const KEYS = '/home/alice/.ssh/authorized_keys';

/** Two real key pairs from this machine's ssh-keygen (none: well-formed synthetic keys), and their fingerprints. */
function keyPairs(): { keys: string[]; fingerprints: string[] | undefined } {
  const dir = mkdtempSync(path.join(tmpdir(), 'hk-login-'));
  try {
    const keys = ['alice-laptop', 'alice-phone'].map((name) => {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(dir, name)]);
      return readFileSync(path.join(dir, `${name}.pub`), 'utf8').trim();
    });
    return { keys, fingerprints: keys.map((k, i) => fingerprintsOf(`${k}\n`, `${dir}/fp${i}`)[0]!) };
  } catch {
    return { keys: [testKey('alice-laptop'), testKey('alice-phone')], fingerprints: undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `ssh-keygen -l -f` of a copy of the file (on this machine: the image has no ssh-keygen): one fingerprint a key.
function fingerprintsOf(text: string, file: string): string[] {
  writeFileSync(file, text);
  return execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[1]!);
}

function account(user: string, body: string): string {
  return `apiVersion: hostkit.dev/v1
kind: Account
metadata:
  name: ${user}
spec:
  placement:
    hosts: [${HOST_NAME}]
${body}`;
}

const keysOf = (keys: readonly string[]) => `  authorizedKeys:\n${keys.map((k) => `    - ${k}\n`).join('')}`;
const SUDO = '  sudo:\n    - commands: [/usr/bin/systemctl, /usr/bin/journalctl]\n      password: false\n    - commands: [ALL]\n      runAs: postgres\n';

const owner = async (m: TestHost, p: string) => (await m.exec('stat', ['-c', '%U:%G %a', p])).stdout.trim();
const exists = async (m: TestHost, p: string) => (await m.host.exec('test', ['-e', p])).exitCode === 0;

// What sshd's StrictModes checks (auth2-pubkeyfile.c, secure_filename): the file and each directory up to the
// home are owned by the user or root and not writable by group or others.
async function strictModes(m: TestHost, user: string, file: string, home: string): Promise<string[]> {
  const problems: string[] = [];
  for (let p = file; ; p = path.posix.dirname(p)) {
    const [who, mode] = (await m.exec('stat', ['-c', '%U %a', p])).stdout.trim().split(' ');
    if (who !== user && who !== 'root') problems.push(`${p} owned by ${who}`);
    if ((parseInt(mode!, 8) & 0o022) !== 0) problems.push(`${p} mode ${mode}`);
    if (p === home) return problems;
  }
}

describeHost('login access (Account authorizedKeys and sudo) on a real host', () => {
  const machine = useHost();

  beforeAll(async () => {
    // The standard image has sudo (rootfs.ts): the rules are checked by the real visudo.
    expect((await machine().host.exec('sh', ['-c', 'command -v visudo'])).exitCode).toBe(0);
  });

  it("keys are written as sshd's StrictModes wants, ssh-keygen reads them; a second run changes nothing; a hand edit is healed", async () => {
    const m = machine();
    const { keys, fingerprints } = keyPairs();
    const files = { 'hosts/people.yaml': account('alice', `  home: /home/alice\n  shell: /bin/bash\n${keysOf(keys)}`) };
    const first = appliedOk(await reconcile(m, await repo(files)));
    expect(first.steps.map((s) => `${s.action} ${s.id}`)).toEqual(['create account/alice', 'create authorizedkeys/alice']);
    expect([await owner(m, '/home/alice'), await owner(m, '/home/alice/.ssh'), await owner(m, KEYS)]).toEqual([
      'alice:alice 700',
      'alice:alice 700',
      'alice:alice 600',
    ]);
    expect(await strictModes(m, 'alice', KEYS, '/home/alice')).toEqual([]);
    const text = (await m.host.readFile(KEYS))!.toString('utf8');
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(keys);
    if (fingerprints) {
      const dir = mkdtempSync(path.join(tmpdir(), 'hk-login-'));
      try {
        expect(fingerprintsOf(text, path.join(dir, 'authorized_keys'))).toEqual(fingerprints);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else process.stderr.write('[host] login: no ssh-keygen on this machine; the key file was checked line by line only\n');

    expect(applied(await reconcile(m, await repo(files))).status).toBe('no-changes');

    await m.exec('sh', ['-c', `echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHandAddedKeyHandAddedKeyHandAddedKeyHand intruder' >> ${KEYS}; chmod 0644 ${KEYS}`]);
    const plan = await reconcile(m, await repo(files), { dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    const change = plan.planned.plan.changes.find((c) => c.id === 'authorizedkeys/alice')!;
    expect(change.fields.map((f) => f.field)).toEqual(['/content', '/mode']);
    expect(change.fields[0]!.before).toMatch(/^changed by hand, \d+ bytes, fingerprint hmac:/);
    expect(JSON.stringify(plan.planned.plan)).not.toContain('intruder');
    appliedOk(await reconcile(m, await repo(files)));
    expect(await owner(m, KEYS)).toBe('alice:alice 600');
    expect((await m.host.readFile(KEYS))!.toString('utf8')).toBe(text);
  });

  it('a key file HostKit did not write is never shown in a plan; the declared list replaces it; dropping the keys removes the file', async () => {
    const m = machine();
    await m.exec('useradd', ['--create-home', '--home-dir', '/home/dave', '--shell', '/bin/bash', 'dave']);
    await m.exec('sh', [
      '-c',
      'install -d -m 0700 -o dave -g dave /home/dave/.ssh && echo "ssh-rsa AAAAB3NzaC1yc2E dave-private-comment" > /home/dave/.ssh/authorized_keys && chown dave:dave /home/dave/.ssh/authorized_keys',
    ]);
    const key = testKey('dave-new');
    const files = { 'hosts/dave.yaml': account('dave', `  home: /home/dave\n  shell: /bin/bash\n${keysOf([key])}`) };
    const plan = await reconcile(m, await repo(files), { dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    expect(plan.planned.plan.changes.find((c) => c.id === 'authorizedkeys/dave')!.fields[0]!.before).toMatch(/^exists, \d+ bytes, fingerprint hmac:/);
    expect(JSON.stringify(plan.planned.plan)).not.toContain('dave-private-comment');
    appliedOk(await reconcile(m, await repo(files)));
    const written = (await m.host.readFile('/home/dave/.ssh/authorized_keys'))!.toString('utf8');
    expect(written).toContain(key);
    expect(written).not.toContain('dave-private-comment');

    const dropped = appliedOk(await reconcile(m, await repo({ 'hosts/dave.yaml': account('dave', '  home: /home/dave\n  shell: /bin/bash\n') })));
    expect(dropped.steps.map((s) => `${s.action} ${s.id}`)).toEqual(['delete authorizedkeys/dave']);
    expect(await exists(m, '/home/dave/.ssh/authorized_keys')).toBe(false);
  });

  it('sudo rules: installed root:root 0440 after visudo -cf and shown by sudo -l', async () => {
    const m = machine();
    const files = { 'hosts/carol.yaml': account('carol', `  home: /home/carol\n  shell: /bin/bash\n${keysOf([testKey('carol')])}${SUDO}`) };
    const outcome = applied(await reconcile(m, await repo(files)));
    expect(outcome.status).toBe('applied');
    expect(await owner(m, '/etc/sudoers.d/hostkit-carol')).toBe('root:root 440');
    const listed = (await m.exec('sudo', ['-l', '-U', 'carol'])).stdout;
    expect(listed).toMatch(/\(root\) NOPASSWD: \/usr\/bin\/systemctl, \/usr\/bin\/journalctl/);
    expect(listed).toMatch(/\(postgres\) ALL/);
    expect((await m.exec('visudo', ['-c'])).exitCode).toBe(0);
    expect(applied(await reconcile(m, await repo(files))).status).toBe('no-changes');
  });

  it('a rule visudo refuses (crafted past the schema through the driver) is never installed and the run rolls back', async () => {
    const m = machine();
    const files = { 'hosts/erin.yaml': account('erin', `  home: /home/erin\n${keysOf([testKey('erin')])}${SUDO}`) };
    const outcome = applied(await reconcile(m, await repo(files), { drivers: driversWithBrokenSudoers() }));
    expect(outcome.status).toBe('rolled-back');
    if (outcome.status !== 'rolled-back') return;
    expect(outcome.failed.id).toBe('sudoers/erin');
    expect(outcome.failed.error).toMatch(
      /^sudo rules of account erin \(hosts\/erin\.yaml:\d+:\d+\): visudo -cf refused them: .*syntax error.*Nothing was installed$/s,
    );
    expect(await exists(m, '/etc/sudoers.d/hostkit-erin')).toBe(false);
    expect(await exists(m, '/etc/sudoers.d/.hostkit-erin.check')).toBe(false);
    expect(await exists(m, '/home/erin')).toBe(false);
    expect((await m.host.exec('id', ['erin'])).exitCode).not.toBe(0);
  });

  it('without sudo on the host the run fails naming the manifest and the account, and rolls back', async () => {
    const m = machine();
    await m.exec('mv', ['/usr/sbin/visudo', '/usr/sbin/visudo.away']);
    try {
      const files = { 'hosts/frank.yaml': account('frank', `  home: /home/frank\n  shell: /bin/bash\n${keysOf([testKey('frank')])}${SUDO}`) };
      const outcome = applied(await reconcile(m, await repo(files)));
      expect(outcome.status).toBe('rolled-back');
      if (outcome.status !== 'rolled-back') return;
      expect(outcome.failed.id).toBe('sudoers/frank');
      expect(outcome.failed.error).toMatch(/^sudo rules of account frank \(hosts\/frank\.yaml:\d+:\d+\): .*install the package sudo.*Nothing was installed$/s);
      expect(outcome.rollbackErrors).toEqual([]);
      // Nothing of the run stays: the keys, the home and .ssh made for them, the account it created, no sudo file.
      expect(await exists(m, '/home/frank')).toBe(false);
      expect((await m.host.exec('id', ['frank'])).exitCode).not.toBe(0);
      expect(await exists(m, '/etc/sudoers.d/hostkit-frank')).toBe(false);
    } finally {
      await m.exec('mv', ['/usr/sbin/visudo.away', '/usr/sbin/visudo']);
    }
  });
});
