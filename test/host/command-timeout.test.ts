// Commands that outlive their time on a real host: the nspawn host's exec ends
// the whole process group (SIGTERM, then SIGKILL after the grace), and a
// lifecycle or health-check command that ignores SIGTERM is killed at its
// timeout plus the grace, the run fails naming it and rolls back, and nothing
// of it is left on the host: no process, no transient unit, no cgroup.
import { expect, it } from 'vitest';
import { COMMAND_KILL_GRACE_MS, runCommand } from '../../reconciler/drivers/command/index.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, reconcile, repo, service } from './reconcile.js';

// The shell ignores SIGTERM, and so does the sleep it leaves behind (an ignored
// signal stays ignored across fork and exec). PIDs go to /tmp to be checked.
function stubborn(tag: string): string {
  return `trap "" TERM; echo $$ > /tmp/${tag}.pid; sleep 300 & echo $! >> /tmp/${tag}.pid; sleep 301`;
}

/** PIDs of the host (its PID namespace) that still run, of those a command wrote to /tmp/TAG.pid. */
async function stillRunning(m: TestHost, tag: string): Promise<string[]> {
  const pids = ((await m.host.readFile(`/tmp/${tag}.pid`))?.toString() ?? '').split('\n').filter(Boolean);
  expect(pids.length).toBeGreaterThan(0);
  const running: string[] = [];
  for (const pid of pids) {
    const stat = await m.host.exec('cat', [`/proc/${pid}/stat`]);
    // A zombie is dead already; only its parent's reaping is left.
    if (stat.exitCode === 0 && !/^\d+ \(.*\) [ZX] /.test(stat.stdout)) running.push(`${pid}: ${stat.stdout.trim()}`);
  }
  return running;
}

// Where the host's systemd keeps system.slice: cgroup v2, or v1's named and unified hierarchies (hybrid).
const SLICES = ['/sys/fs/cgroup/system.slice', '/sys/fs/cgroup/systemd/system.slice', '/sys/fs/cgroup/unified/system.slice'];

/** What is left of transient command units: loaded units and their cgroups. */
async function commandUnitsLeft(m: TestHost): Promise<string[]> {
  const units = (await m.exec('systemctl', ['list-units', '--all', '--plain', '--no-legend', 'hostkit-command-*'])).stdout.trim();
  const left = units ? units.split('\n') : [];
  let slices = 0;
  for (const slice of SLICES) {
    const entries = await m.host.readdir(slice);
    if (entries) slices++;
    left.push(...(entries ?? []).filter((d) => d.startsWith('hostkit-command-')).map((d) => `${slice}/${d}`));
  }
  expect(slices).toBeGreaterThan(0);
  return left;
}

describeHost('test/host/command-timeout: commands past their time', () => {
  const machine = useHost();

  it('nspawn exec: a command that ignores SIGTERM is killed after the grace, with the grandchild it left in its group, and exec says it timed out', async () => {
    const m = machine();
    const started = Date.now();
    const error = await m.host.exec('bash', ['-c', stubborn('exec')], { timeoutMs: 1_000, killGraceMs: 1_500 }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({
      code: 'EXEC_TIMED_OUT',
      message: expect.stringMatching(/^bash -c trap .* on nspawn:\S+ timed out after 1000 ms; its process group got SIGTERM, then SIGKILL after 1500 ms$/),
    });
    expect(elapsed).toBeGreaterThanOrEqual(2_500);
    expect(elapsed).toBeLessThan(5_000);
    expect(await stillRunning(m, 'exec')).toEqual([]);
  });

  it("runCommand on a real systemd: the command's exit code and output, without systemd-run's own lines", async () => {
    const m = machine();
    const run = { user: 'nobody', workingDirectory: '/' };
    expect(await runCommand(m.host, { ...run, argv: ['/bin/sh', '-c', 'id -un; echo err >&2; exit 3'] })).toMatchObject({
      exitCode: 3,
      stdout: 'nobody\n',
      stderr: 'err\n',
    });
    expect(await runCommand(m.host, { ...run, argv: ['/bin/true'] })).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(await commandUnitsLeft(m)).toEqual([]);
  });

  it('a lifecycle command that traps SIGTERM and sleeps past its timeout: the run fails in timeout + grace naming it, rolls back, and leaves no process or unit', async () => {
    const m = machine();
    const timeoutMs = 3_000;
    const project = service(
      'slow',
      9311,
      `  lifecycle:
    - name: migrate
      phase: before-start
      timeout: 3s
      command: [/bin/bash, -c, '${stubborn('migrate')}']
`,
    );
    const started = Date.now();
    const result = applied(await reconcile(m, await repo({ 'projects/slow.yaml': project })));
    const elapsed = Date.now() - started;
    process.stderr.write(`[host] the run with a stuck lifecycle command failed and rolled back after ${elapsed} ms\n`);

    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('command/slow-migrate');
    expect(result.failed.error).toMatch(
      /^lifecycle command migrate of slow failed: \/bin\/bash -c trap .* timed out after 3 s: its unit hostkit-command-slow-[0-9a-f]{10}\.service got SIGTERM, then SIGKILL after 5 s$/,
    );
    expect(result.rollbackErrors).toEqual([]);
    // In time: the command alone takes timeout + grace; the rest of the run (account, files, rollback) a few seconds.
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs + COMMAND_KILL_GRACE_MS);
    expect(elapsed).toBeLessThan(timeoutMs + COMMAND_KILL_GRACE_MS + 15_000);

    // Rolled back: what the run wrote before the command is gone again.
    expect(result.steps.map((s) => s.id)).toEqual(expect.arrayContaining(['envfile/etc/hostkit/env/slow.env', 'account/slow']));
    expect(await m.host.stat('/etc/hostkit/env/slow.env')).toBeUndefined();
    expect(await m.host.stat('/etc/systemd/system/hk-slow.service')).toBeUndefined();
    expect((await m.host.exec('id', ['slow'])).exitCode).not.toBe(0);

    // Nothing of the command is left: its shell and the sleep it forked are gone, and so are its unit and cgroup.
    expect(await stillRunning(m, 'migrate')).toEqual([]);
    expect((await m.host.exec('pgrep', ['-f', 'sleep 30[01]'])).stdout).toBe('');
    expect(await commandUnitsLeft(m)).toEqual([]);
  });

  it('a health-check command that traps SIGTERM is killed the same way: the check fails saying it timed out, and the run rolls back', async () => {
    const m = machine();
    const project = service(
      'checked',
      9312,
      `  health:
    command: [/bin/bash, -c, '${stubborn('health')}']
    timeout: 2s
    retries: 0
`,
    );
    const started = Date.now();
    const result = applied(await reconcile(m, await repo({ 'projects/checked.yaml': project })));
    const elapsed = Date.now() - started;

    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('health/checked');
    expect(JSON.stringify(result.failed)).toMatch(
      /health command \/bin\/bash -c trap .* timed out after 2 s: its unit hostkit-command-[0-9a-f]+\.service got SIGTERM, then SIGKILL after 5 s/,
    );
    expect(elapsed).toBeLessThan(2_000 + COMMAND_KILL_GRACE_MS + 20_000);
    expect(await m.host.stat('/etc/systemd/system/hk-checked.service')).toBeUndefined();
    expect(await stillRunning(m, 'health')).toEqual([]);
    expect(await commandUnitsLeft(m)).toEqual([]);
  });
});
