import { expect, it } from 'vitest';
import type { UnitsAfterRestore } from '../../reconciler/drivers/systemd/restore.js';
import { findRun, rollbackRun } from '../../reconciler/apply/rollback.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost } from '../../reconciler/engine.js';
import type { Host } from '../../reconciler/hosts/types.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, eventually, HOST_NAME, reconcile, repo, unitProperty } from './reconcile.js';

// The firewall table across a reboot: hostkit-firewall.service loads the last
// confirmed table from the state directory before the network comes up, so a
// host with `input: drop` is never open after a boot, not even for a moment.

const STATE = '/var/lib/hostkit';
const BOOT_FILE = `${STATE}/firewall/confirmed.nft`;
const UNIT = 'hostkit-firewall.service';
const UNIT_PATH = `/etc/systemd/system/${UNIT}`;

function hostYaml(firewall: boolean): string {
  return `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: ${STATE}
${firewall ? '  firewall:\n    input: drop\n' : ''}`;
}

/** A service listening on every address at `port`, with the firewall opening `opened` (its own port unless told). */
function web(name: string, port: number, options: { opened?: number[]; health?: string } = {}): string {
  const opened = options.opened ?? [port];
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: ${name}
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "${port}", --bind, "::"]
    port: ${port}
  firewall:
${opened.map((p) => `    - { port: ${p} }`).join('\n')}
${options.health ?? ''}`;
}

// web on 8080, opened; nginx (Debian's default site) listens on 80, never opened.
const WEB = web('web', 8080);

/** The host's commands and writes through HostKit, recorded. */
function recording(host: Host): { host: Host; calls: string[]; writes: string[] } {
  const calls: string[] = [];
  const writes: string[] = [];
  const proxy = new Proxy(host, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (key === 'exec') calls.push([args[0], ...(args[1] as string[])].join(' '));
        if (key === 'writeFile' || key === 'remove' || key === 'mkdir') writes.push(args[0] as string);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { host: proxy, calls, writes };
}

// Another machine on 192.0.2.0/24: a network namespace inside the host joined by a veth pair, so
// its traffic enters the host on hk0 and crosses the input hook (as in nftables.test.ts). A reboot
// takes it away with the rest of the host's network.
async function addProbe(m: TestHost): Promise<void> {
  await m.exec('ip', ['netns', 'add', 'probe']);
  await m.exec('ip', ['link', 'add', 'hk0', 'type', 'veth', 'peer', 'name', 'hk1', 'netns', 'probe']);
  await m.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'hk0']);
  await m.exec('ip', ['link', 'set', 'hk0', 'up']);
  await m.exec('ip', ['-n', 'probe', 'addr', 'add', '192.0.2.2/24', 'dev', 'hk1']);
  await m.exec('ip', ['-n', 'probe', 'link', 'set', 'hk1', 'up']);
}

/** HTTP status seen from the probe namespace; "000" when nothing answered. */
async function fromProbe(m: TestHost, url: string): Promise<string> {
  const args = ['netns', 'exec', 'probe', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', '1', '--max-time', '3', url];
  return (await m.host.exec('ip', args)).stdout.trim();
}

async function table(m: TestHost): Promise<string> {
  const result = await m.host.exec('nft', ['list', 'table', 'inet', 'hostkit']);
  return result.exitCode === 0 ? result.stdout : `(no table: ${result.stderr.trim()})`;
}

async function bootFile(m: TestHost): Promise<string | undefined> {
  return (await m.host.readFile(BOOT_FILE))?.toString('utf8');
}

async function enabled(m: TestHost): Promise<string> {
  return (await m.host.exec('systemctl', ['is-enabled', UNIT])).stdout.trim();
}

async function monotonic(m: TestHost, unit: string, property: string): Promise<number> {
  return Number(await unitProperty(m, unit, property));
}

describeHost('reconciler/drivers/nftables: the firewall table at boot, on a real host', () => {
  const machine = useHost();

  it('an apply installs the boot copy once the table is confirmed: unit verified and enabled, file 0600; applying again touches nothing', async () => {
    const m = machine();
    const outcome = await reconcile(m, await repo({ 'hosts/test-host.yaml': hostYaml(true), 'projects/web.yaml': WEB }));
    expect(appliedOk(outcome).status).toBe('applied');
    if (outcome.stage === 'applied') {
      expect(outcome.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!.fields.map((f) => f.field)).toEqual(['/table', '/boot']);
    }
    const verify = await m.host.exec('systemd-analyze', ['verify', '--no-pager', UNIT_PATH], { env: { SYSTEMD_LOG_COLOR: '0' } });
    expect({ exitCode: verify.exitCode, stderr: verify.stderr.split('\n').filter((l) => l.includes(UNIT)) }).toEqual({ exitCode: 0, stderr: [] });
    expect(await enabled(m)).toBe('enabled');
    expect(await m.host.stat(BOOT_FILE)).toMatchObject({ type: 'file', mode: 0o600, uid: 0, gid: 0 });
    expect(await m.host.stat(`${STATE}/firewall`)).toMatchObject({ type: 'directory', mode: 0o700, uid: 0 });
    expect(await bootFile(m)).toContain('table inet hostkit {');
    expect(await bootFile(m)).not.toMatch(/flush/);
    // Not started now: the live table is already the one it would load.
    expect(await unitProperty(m, UNIT, 'ActiveState')).toBe('inactive');
    expect(await unitProperty(m, UNIT, 'NeedDaemonReload')).toBe('no');

    const again = recording(m.host);
    const repoDir = await repo({ 'hosts/test-host.yaml': hostYaml(true), 'projects/web.yaml': WEB });
    const second = await reconcileHost({ repoDir, hostName: HOST_NAME, host: again.host, dryRun: false, log: silentLogger(), env: {} });
    expect(applied(second).status).toBe('no-changes');
    expect(again.calls.filter((c) => /^systemctl (daemon-reload|enable|disable|restart|start)|^nft (-c )?-f|^systemd-analyze verify/.test(c))).toEqual([]);
    expect(again.writes.filter((w) => w === BOOT_FILE || w.startsWith('/etc/systemd/'))).toEqual([]);
  });

  it('after a reboot the table is in place before the network and any service, and only the opened port answers', async () => {
    const m = machine();
    // Debian's own nftables.service (its nftables.conf begins with `flush ruleset`) runs at boot too,
    // slowed down so that a table loaded before it finished would be flushed.
    await m.exec('systemctl', ['enable', '--quiet', 'nftables.service']);
    await m.exec('mkdir', ['-p', '/etc/systemd/system/nftables.service.d']);
    await m.host.writeFile('/etc/systemd/system/nftables.service.d/slow.conf', '[Service]\nExecStartPre=/bin/sleep 1\n', { uid: 0, gid: 0, mode: 0o644 });
    const confirmed = await table(m);
    expect(confirmed).toContain('policy drop;');

    await m.reboot();
    expect(await table(m)).toBe(confirmed);
    expect((await m.exec('nft', ['list', 'tables'])).stdout.split('\n')).toEqual(expect.arrayContaining(['table inet filter', 'table inet hostkit']));
    expect(await unitProperty(m, UNIT, 'Result')).toBe('success');
    expect(await unitProperty(m, UNIT, 'ActiveState')).toBe('active');
    // systemd breaks an ordering cycle by dropping a job, and only says so in its journal (which is read: the unit's start is there).
    const journal = async (pattern: string) => (await m.host.exec('journalctl', ['-b', '--no-pager', '-q', '-o', 'cat', '--grep', pattern])).stdout;
    expect(await journal('HostKit firewall')).toMatch(/HostKit firewall/);
    expect(await journal('ordering cycle')).toBe('');

    // Ordering, from systemd's own clock: nftables.service, then the table, then the network and every service.
    const loaded = await monotonic(m, UNIT, 'ActiveEnterTimestampMonotonic');
    const started = await monotonic(m, UNIT, 'ExecMainStartTimestampMonotonic');
    expect(loaded).toBeGreaterThan(0);
    expect(await monotonic(m, 'nftables.service', 'ActiveEnterTimestampMonotonic')).toBeGreaterThan(0);
    expect(await monotonic(m, 'nftables.service', 'ActiveEnterTimestampMonotonic')).toBeLessThanOrEqual(started);
    for (const target of ['network-pre.target', 'sysinit.target']) {
      expect({ target, before: loaded <= (await monotonic(m, target, 'ActiveEnterTimestampMonotonic')) }).toEqual({ target, before: true });
    }
    for (const service of ['nginx.service', 'hk-web.service']) {
      const listens = await monotonic(m, service, 'ExecMainStartTimestampMonotonic');
      expect({ service, listens: listens > 0, after: listens >= loaded }).toEqual({ service, listens: true, after: true });
    }

    await addProbe(m);
    expect(await eventually(async () => (await fromProbe(m, 'http://192.0.2.1:8080/')) === '200', 10_000)).toBe(true);
    expect((await m.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', 'http://127.0.0.1:80/'])).stdout).toBe('200');
    expect(await fromProbe(m, 'http://192.0.2.1:80/')).toBe('000'); // nginx listens, but port 80 was never opened

    // The host as HostKit left it: the next plan has nothing to do.
    const plan = await reconcile(m, await repo({ 'hosts/test-host.yaml': hostYaml(true), 'projects/web.yaml': WEB }), { dryRun: true });
    if (plan.stage === 'planned') expect(plan.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!.action).toBe('noop');
  });

  it('a firewall change rolled back after it was confirmed (a health check failed) leaves the previous table in the boot file', async () => {
    const m = machine();
    const previous = await bootFile(m);
    const liveBefore = await table(m);
    const failing = web('gate', 8081, { health: '  health:\n    command: [/bin/false]\n    timeout: 2s\n    retries: 0\n' });
    const result = applied(await reconcile(m, await repo({ 'hosts/test-host.yaml': hostYaml(true), 'projects/web.yaml': WEB, 'projects/gate.yaml': failing })));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('health/gate');
    expect(result.rollbackErrors).toEqual([]);
    expect(result.steps.map((s) => s.id)).toContain('firewall/hostkit'); // it was applied (and confirmed) before the check failed
    expect(await bootFile(m)).toBe(previous);
    expect(await bootFile(m)).not.toContain('8081');
    expect(await table(m)).toBe(liveBefore);
    expect(await enabled(m)).toBe('enabled');
  });

  it('`hostkit rollback` of the run that removed the firewall brings back the boot copy, enabled, and the next boot loads the table', async () => {
    const m = machine();
    const previous = await bootFile(m);
    const liveBefore = await table(m);
    expect(appliedOk(await reconcile(m, await repo({ 'hosts/test-host.yaml': hostYaml(false), 'projects/web.yaml': WEB }))).status).toBe('applied');
    expect(await m.host.readFile(UNIT_PATH)).toBeUndefined();
    expect(await bootFile(m)).toBeUndefined();
    expect(await enabled(m)).not.toBe('enabled');
    expect([await unitProperty(m, UNIT, 'LoadState'), await unitProperty(m, UNIT, 'ActiveState')]).toEqual(['not-found', 'inactive']);
    expect(await table(m)).toMatch(/^\(no table/);

    const outcome = await rollbackRun(await findRun(m.host, STATE, { last: true }), { dryRun: false, log: silentLogger() });
    expect(outcome.result?.errors).toEqual([]);
    expect((outcome.plan.after.find((a) => a.kind === 'unit')?.plan as UnitsAfterRestore).enable).toEqual([UNIT]);
    expect(await bootFile(m)).toBe(previous);
    expect(await enabled(m)).toBe('enabled');
    expect(await table(m)).toBe(liveBefore);

    await m.reboot({ poweroff: 'immediate' });
    expect(await table(m)).toBe(liveBefore);
    await addProbe(m);
    expect(await eventually(async () => (await fromProbe(m, 'http://192.0.2.1:8080/')) === '200', 10_000)).toBe(true);
    expect(await fromProbe(m, 'http://192.0.2.1:80/')).toBe('000');
  });
});
