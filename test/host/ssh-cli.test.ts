// The command line over SSH (issue #23, "Remote hosts"): `hostkit ... --target
// ssh://root@web-1 --ssh-config FILE` run on this machine as an operator runs
// it on a laptop, against sshd in booted test hosts reached through a
// ProxyCommand into their network namespace, with real keys. What it prints is
// compared with the same command run inside the host. Two hosts (and one that
// cannot be reached) for --hosts: grouped output, JSON keyed by host.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { gitCommitAll, writeRepo } from '../support/fixtures.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { eventually, HOST_NAME, service } from './reconcile.js';
import { sshInto, type SshAccess } from './ssh.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
// This machine's side: the config repository (bound into the hosts at the same path, for the runs inside), the ssh configs, the parse cache.
const SHARED = mkdtempSync(path.join(os.tmpdir(), 'hostkit-ssh-cli-'));
const REPO = path.join(SHARED, 'config');
const CFG = path.join(SHARED, 'ssh_config');
const WEB2_KEY = 'HK_WEB2_SSH_KEY';

// A service with an HTTP health check through its nginx site, and a File: on every Host labelled env=test.
const ON_TEST_HOSTS = 'selector: { matchLabels: { env: test } }';
const SHOP = service(
  'shop',
  9301,
  `  files:
    - { name: version.txt, content: "v1\\n" }
  domains:
    - { name: shop.hk.test, tls: none }
  health:
    http: { path: /version.txt, bodyContains: v1 }
    timeout: 2s
    retries: 4
`,
).replace(`hosts: [${HOST_NAME}]`, ON_TEST_HOSTS);
const MOTD = `apiVersion: hostkit.dev/v1
kind: File
metadata: { name: shop-motd, project: shop }
spec:
  placement: { ${ON_TEST_HOSTS} }
  path: /var/www/shop/motd.txt
  content: "served over ssh\\n"
`;

const hostYaml = (name: string, spec: string) =>
  `apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: ${name}\n  labels: { env: test }\nspec:\n  stateDirectory: /var/lib/hostkit\n${spec}`;

/** The CLI here, as an operator's laptop runs it. */
function hostkit(args: string[], env: Record<string, string> = {}) {
  return execa(NODE, [...NODE_FLAGS, CLI, ...args], {
    reject: false,
    stripFinalNewline: false,
    cwd: SHARED,
    env: { NO_COLOR: '1', HOSTKIT_CACHE_DIR: path.join(SHARED, 'cache'), ...env },
    timeout: 150_000,
  });
}

/** The same CLI inside the host, as an operator logged in there runs it. */
function inside(m: TestHost, args: string[]) {
  return m.host.exec(NODE, [...NODE_FLAGS, CLI, ...args], { env: { NO_COLOR: '1', HOSTKIT_CACHE_DIR: '/tmp/hostkit-cache' }, timeoutMs: 150_000 });
}

/** sshd sessions of root open on the host (a connection HostKit did not close shows here). */
async function rootSessions(m: TestHost): Promise<number> {
  return (await m.exec('ps', ['-eo', 'args='])).stdout.split('\n').filter((l) => l.startsWith('sshd: root')).length;
}

const mask = (text: string) => text.replace(/"checkedAt": "[^"]+"/g, '"checkedAt": "*"').replace(/"memoryBytes": \d+/g, '"memoryBytes": 0');

describeHost('hostkit --target / --hosts: the CLI over SSH against real hosts', () => {
  const mounts = { bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: SHARED }] };
  const web1 = useHost({ hostname: 'web-1', ...mounts });
  const web2 = useHost({ hostname: 'web-2', ...mounts });
  let access1: SshAccess;
  let access2: SshAccess;
  let web2Key: string;
  const target = ['--target', 'ssh://root@web-1', '--ssh-config', CFG, '--repo', REPO];

  beforeAll(async () => {
    access1 = await sshInto(web1());
    access2 = await sshInto(web2());
    web2Key = await readFile(access2.identityFile, 'utf8');
    // web-1's known_hosts comes from its Host manifest (spec.ssh.knownHosts), web-2's key from a variable
    // (spec.ssh.identityFile {env:}); whatever else ssh would read of this machine is /dev/null.
    const block = async (access: SshAccess, drop: RegExp) =>
      (await readFile(access.configFile, 'utf8'))
        .split('\n')
        .filter((l) => !drop.test(l))
        .join('\n');
    await writeFile(
      CFG,
      [
        await block(access1, /^\s*UserKnownHostsFile /),
        await block(access2, /^\s*IdentityFile /),
        'Host *',
        '  UserKnownHostsFile /dev/null',
        '  GlobalKnownHostsFile /dev/null',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await writeRepo(
      {
        'hosts/web-1.yaml': hostYaml('web-1', `  ssh:\n    knownHosts: ${access1.knownHostsFile}\n`),
        'hosts/web-2.yaml': hostYaml('web-2', `  ssh:\n    user: root\n    identityFile: { env: ${WEB2_KEY} }\n`),
        // Never reachable: sshd's port there is closed (loopback of this machine, port 1).
        'hosts/web-down.yaml': hostYaml('web-down', '  address: root@127.0.0.1\n  ssh:\n    port: 1\n'),
        'projects/shop.yaml': SHOP,
        'files/motd.yaml': MOTD,
      },
      REPO,
    );
    await gitCommitAll(REPO);
  });
  afterAll(async () => {
    await access1?.dispose();
    await access2?.dispose();
    rmSync(SHARED, { recursive: true, force: true });
  });

  it('reconcile --target applies the scenario; plan --target after it shows no changes, as the plan inside does', async () => {
    const m = web1();
    const applied = await hostkit(['reconcile', ...target]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/Applied \d+ change\(s\) to web-1\./);
    expect(applied.stdout).toContain('healthy: shop (http://shop.hk.test/version.txt (via 127.0.0.1:80))');
    expect((await m.exec('cat', ['/var/www/shop/motd.txt'])).stdout).toBe('served over ssh\n');
    expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');
    expect((await m.exec('curl', ['-s', '-H', 'Host: shop.hk.test', 'http://127.0.0.1/version.txt'])).stdout).toBe('v1\n');
    expect((await m.exec('ls', ['/etc/nginx/conf.d'])).stdout).toMatch(/^hostkit-shop.*\.conf$/m);

    const plan = await hostkit(['plan', '--exit-code', ...target]);
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toContain('No changes. The host matches the manifests.');
    const local = await inside(m, ['plan', '--exit-code', '--repo', REPO]);
    expect(local.exitCode).toBe(0);
    expect(plan.stdout).toBe(local.stdout);
    const [overSsh, here] = await Promise.all([hostkit(['plan', '-o', 'json', ...target]), inside(m, ['plan', '-o', 'json', '--repo', REPO])]);
    expect(JSON.parse(overSsh.stdout)).toEqual(JSON.parse(here.stdout));
  });

  it('status, health, runs, releases, logs, backups and resume over the target give what they give inside the host', async () => {
    const m = web1();
    const status = await hostkit(['status', '-o', 'json', ...target]);
    expect(status.exitCode).toBe(0);
    const statusInside = await inside(m, ['status', '-o', 'json', '--repo', REPO]);
    expect(JSON.parse(mask(status.stdout))).toEqual(JSON.parse(mask(statusInside.stdout)));
    expect(JSON.parse(status.stdout)).toMatchObject({ host: 'web-1', drift: { state: 'in-sync' }, projects: [{ name: 'shop', health: { state: 'passing' } }] });

    const health = await hostkit(['health', ...target]);
    expect(health.exitCode).toBe(0);
    const healthInside = await inside(m, ['health', '--repo', REPO]);
    const ms = (text: string) => text.replace(/\(\d+ ms\)/g, '(N ms)');
    expect(ms(health.stdout)).toBe(ms(healthInside.stdout));
    expect(health.stdout).toMatch(/^ok {2}\s*shop {2}unit hk-shop\.service active, GET http:\/\/shop\.hk\.test\/version\.txt/);

    for (const args of [
      ['runs', '-o', 'json'],
      ['runs', '--verbose'],
      ['releases', '-o', 'json'],
      ['logs', 'shop', '--unit', 'service', '-n', '3', '-o', 'json'],
      ['backups', '-o', 'json'],
      ['resume', '-o', 'json'],
    ]) {
      const [overSsh, here] = [await hostkit([...args, ...target]), await inside(m, [...args, '--repo', REPO])];
      expect({ args, exitCode: overSsh.exitCode, stdout: overSsh.stdout, stderr: overSsh.stderr }).toEqual({
        args,
        exitCode: here.exitCode,
        stdout: here.stdout,
        stderr: here.stderr,
      });
    }
    expect(JSON.parse((await hostkit(['runs', '-o', 'json', ...target])).stdout).runs).toHaveLength(1);
  });

  it('rollback --last over the target: the down plan the host itself computes, then the host as before the run', async () => {
    const m = web1();
    const dry = await hostkit(['rollback', '--last', '--dry-run', ...target]);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toBe((await inside(m, ['rollback', '--last', '--dry-run'])).stdout);
    expect(dry.stdout).toContain('remove  /var/www/shop/motd.txt (did not exist before)');

    const done = await hostkit(['rollback', '--last', ...target]);
    expect(done.exitCode).toBe(0);
    expect(done.stdout).toMatch(/Restored the state before run \S+ \(rollback run \S+\)/);
    expect(await m.host.stat('/var/www/shop/motd.txt')).toBeUndefined();
    expect(await m.host.stat('/etc/systemd/system/hk-shop.service')).toBeUndefined();
    const runs = JSON.parse((await hostkit(['runs', '-o', 'json', ...target])).stdout) as { runs: { type: string; status: string }[] };
    expect(runs.runs.map((r) => `${r.type} ${r.status}`)).toEqual(['apply applied', 'rollback restored']);
    expect(JSON.parse((await inside(m, ['runs', '-o', 'json'])).stdout)).toEqual(runs);
  });

  it('a saved plan over the target: refused once the host changed since (exit 1, the resource named, nothing applied), applied when current', async () => {
    const m = web1();
    const file = path.join(SHARED, 'plan.json');
    const saved = await hostkit(['plan', '--out', file, ...target]);
    expect(saved.exitCode, saved.stderr).toBe(0);
    // By hand, between plan and apply: the file the plan would create appears with other bytes.
    await m.exec('sh', ['-c', 'mkdir -p /var/www/shop && echo "by hand" > /var/www/shop/motd.txt']);
    const stale = await hostkit(['reconcile', '--plan', file, ...target]);
    expect(stale.exitCode).toBe(1);
    expect(stale.stderr).toContain('PLAN_STALE');
    expect(stale.stderr).toContain('/var/www/shop/motd.txt');
    expect((await m.exec('cat', ['/var/www/shop/motd.txt'])).stdout).toBe('by hand\n');
    expect(await m.host.stat('/etc/systemd/system/hk-shop.service')).toBeUndefined();

    await m.host.remove('/var/www/shop/motd.txt');
    expect((await hostkit(['plan', '--out', file, ...target])).exitCode).toBe(0);
    const applied = await hostkit(['reconcile', '--plan', file, ...target]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect((await m.exec('cat', ['/var/www/shop/motd.txt'])).stdout).toBe('served over ssh\n');
    expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');
  });

  it('--accept-new-host-key through the CLI: an unknown key is refused with its fingerprint, then trusted and recorded', async () => {
    const knownHosts = path.join(SHARED, 'known_hosts_new');
    await writeFile(knownHosts, '', { mode: 0o600 });
    const config = path.join(SHARED, 'ssh_config_new');
    await writeFile(config, (await readFile(access2.configFile, 'utf8')).replace(/UserKnownHostsFile \S+/, `UserKnownHostsFile ${knownHosts}`), {
      mode: 0o600,
    });
    const args = ['runs', '--target', 'ssh://root@web-2', '--ssh-config', config, '--repo', REPO];
    const refused = await hostkit(args, { [WEB2_KEY]: web2Key });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(access2.hostKeyFingerprint);
    expect(refused.stderr).toMatch(/\[SSH_HOST_KEY_UNKNOWN\]\n$/);
    expect(await readFile(knownHosts, 'utf8')).toBe('');

    // web-2's key is spec.ssh.identityFile {env:}: without the variable, named.
    const noKey = await hostkit([...args, '--accept-new-host-key']);
    expect(noKey.stderr).toContain('spec.ssh.identityFile of Host web-2 (environment variable HK_WEB2_SSH_KEY): the variable is not set on this machine');
    expect(noKey.exitCode).toBe(1);
    expect(await readFile(knownHosts, 'utf8')).toBe('');

    const trusted = await hostkit([...args, '--accept-new-host-key'], { [WEB2_KEY]: web2Key });
    expect(trusted.exitCode, trusted.stderr).toBe(0);
    expect(trusted.stdout).toBe('No runs recorded in /var/lib/hostkit/runs.\n');
    expect(await readFile(knownHosts, 'utf8')).toMatch(/^web-2 ssh-ed25519 \S+\n$/);
    expect((await hostkit(args, { [WEB2_KEY]: web2Key })).exitCode).toBe(0);
  });

  it('--hosts env=test: each host applied side by side, the unreachable one SSH_CONNECT_FAILED; JSON keyed by host, exit 1', async () => {
    const run = await hostkit(['reconcile', '--hosts', 'env=test', '--ssh-config', CFG, '--repo', REPO, '-o', 'json'], { [WEB2_KEY]: web2Key });
    expect(run.exitCode).toBe(1);
    const doc = JSON.parse(run.stdout) as Record<string, { status?: string; host?: string; error?: { code: string; message: string } }>;
    expect(Object.keys(doc)).toEqual(['web-1', 'web-2', 'web-down']);
    expect(doc['web-1']).toMatchObject({ host: 'web-1', status: 'no-changes' }); // the saved plan applied it already
    expect(doc['web-2']).toMatchObject({ host: 'web-2', status: 'applied' });
    expect(doc['web-down']!.error).toMatchObject({ code: 'SSH_CONNECT_FAILED', message: expect.stringContaining('ssh://root@127.0.0.1:1') });
    expect(run.stderr).toMatch(/^web-down: hostkit: error: Could not open an SSH connection to ssh:\/\/root@127\.0\.0\.1:1: .*\[SSH_CONNECT_FAILED\]$/m);
    for (const m of [web1(), web2()]) expect((await m.exec('cat', ['/var/www/shop/motd.txt'])).stdout).toBe('served over ssh\n');

    // Text: a heading per host; the worst exit code.
    const plan = await hostkit(['plan', '--hosts', 'env=test', '--ssh-config', CFG, '--repo', REPO], { [WEB2_KEY]: web2Key });
    expect(plan.exitCode).toBe(1);
    const headings = plan.stdout.split('\n').filter((l) => l.startsWith('== '));
    expect(headings).toEqual(['== web-1 (ssh://web-1) ==', '== web-2 (ssh://root@web-2) ==', '== web-down (ssh://root@127.0.0.1:1) ==']);
    expect(plan.stdout.match(/No changes\. The host matches the manifests\./g)).toHaveLength(2);
    expect(plan.stdout).toMatch(/\n3 hosts: exit 0: web-1, web-2; exit 1: web-down\n$/);

    // --max-fail 1, one at a time: the unreachable host first (Host web-down by its spec.address), so the other is never started.
    const stopped = await hostkit([
      'runs',
      '--target',
      'ssh://root@127.0.0.1:1',
      '--target',
      'ssh://root@web-1',
      '--ssh-config',
      CFG,
      '--repo',
      REPO,
      '--max-fail',
      '1',
      '--parallel',
      '1',
      '-o',
      'json',
    ]);
    expect(stopped.exitCode).toBe(1);
    expect(JSON.parse(stopped.stdout)).toEqual({
      'web-down': { error: expect.objectContaining({ code: 'SSH_CONNECT_FAILED' }), exitCode: 1 },
      'web-1': { skipped: 'not started: 1 host(s) had failed (--max-fail 1)' },
    });
  });

  it('Ctrl-C closes the connection: a command that stops by itself (health --watch) exits 0, one cut short (waiting for the run lock) 130', async () => {
    const m = web1();
    // Every command before closed its connection.
    expect(await eventually(async () => (await rootSessions(m)) === 0, 10_000)).toBe(true);
    const interrupt = async (args: string[], ready: RegExp, stream: 'stdout' | 'stderr') => {
      const child = spawn(NODE, [...NODE_FLAGS, CLI, ...args, ...target], {
        env: { ...process.env, NO_COLOR: '1', HOSTKIT_CACHE_DIR: path.join(SHARED, 'cache') },
      });
      let seen = '';
      child[stream].on('data', (chunk: Buffer) => (seen += chunk.toString()));
      child.stdout.resume();
      child.stderr.resume();
      expect(await eventually(async () => ready.test(seen), 60_000, 100)).toBe(true);
      expect(await rootSessions(m)).toBeGreaterThan(0);
      child.kill('SIGINT');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    };
    expect(await interrupt(['health', '--watch', '1'], /^ok /m, 'stdout')).toBe(0);
    expect(await eventually(async () => (await rootSessions(m)) === 0, 10_000)).toBe(true);

    const held = await m.host.lock('/var/lib/hostkit/run.lock', { waitMs: 0 });
    try {
      expect(await interrupt(['reconcile', '--lock-timeout', '5m'], /waiting up to 5m for the run lock/, 'stderr')).toBe(130);
      expect(await eventually(async () => (await rootSessions(m)) === 0, 10_000)).toBe(true);
    } finally {
      await held?.release();
    }
  });
});
