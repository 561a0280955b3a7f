// Operating a host (issue #18), on a real host: `hostkit status`, `logs` and
// `health` run inside it as an operator runs them, against two projects (one
// healthy, one whose health check fails) after a commit that failed and is
// quarantined.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost } from '../../reconciler/engine.js';
import { NSPAWN_BASE_ENV } from '../../reconciler/hosts/nspawn.js';
import { schemaDir } from '../../reconciler/manifests/schemas.js';
import type { StatusDocument } from '../../reconciler/commands/status.js';
import { gitCommitAll, writeRepo } from '../support/fixtures.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { appliedOk, applied, eventually, HOST_MANIFEST, HOST_NAME, service, unitProperty } from './reconcile.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
// Shared read-write into the host: the repositories the CLI inside reads.
const SHARED = mkdtempSync(path.join(os.tmpdir(), 'hostkit-operate-'));

// Neither may appear in any status output: the database password (a secret) and a plain environment value.
const CANARY = 'CANARY-db-password-7f3e9a';
const PLAIN = 'plain-env-value-4c2d1b';
const ENV = { SHOP_DB_PASSWORD: CANARY };

// The test Host, managing the firewall.
const HOST = HOST_MANIFEST.replace('spec:\n', 'spec:\n  firewall:\n    input: drop\n');

// good: a service behind a self-signed domain, a worker printing numbered lines, a database, a firewall opening, a lifecycle command.
const GOOD = service(
  'good',
  9501,
  `    environment:
      PLAIN_SETTING: ${PLAIN}
  workers:
    - name: ticker
      command: [/bin/sh, -c, 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done']
  domains:
    - { name: good.hk.test, tls: self-signed }
  database:
    password: { env: SHOP_DB_PASSWORD }
  firewall:
    - { port: 8443, from: [10.0.0.0/8] }
  lifecycle:
    - { name: migrate, phase: before-start, command: [/bin/echo, migrated-good] }
  health:
    http: { path: / }
    timeout: 2s
    retries: 2
`,
);

// bad: healthy while /srv/bad/healthy exists (a file it declares).
const bad = (content: string, checked: string) =>
  service(
    'bad',
    9502,
    `  files:
    - { name: healthy, content: ${content} }
  health:
    command: [/usr/bin/test, -f, ${checked}]
    timeout: 2s
    retries: 0
`,
  );

async function commitRepo(name: string, files: Record<string, string>): Promise<{ dir: string; commit: string }> {
  const dir = await writeRepo({ 'hosts/test-host.yaml': HOST, ...files }, path.join(SHARED, name));
  return { dir, commit: await gitCommitAll(dir) };
}

async function apply(m: TestHost, repo: { dir: string; commit: string }) {
  return reconcileHost({ repoDir: repo.dir, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: ENV, commit: repo.commit });
}

/** The CLI as an operator runs it on the host itself. */
function hostkit(m: TestHost, args: string[]) {
  return m.host.exec(NODE, [...NODE_FLAGS, CLI, ...args], { env: { NO_COLOR: '1', ...ENV }, timeoutMs: 60_000 });
}

const TICK = /^\S+ hk-good-ticker\.service: tick (\d+)$/;

/** The ticker's newest number, as journalctl itself reads it. */
async function lastTick(m: TestHost): Promise<number> {
  const out = (await m.exec('journalctl', ['--no-pager', '-u', 'hk-good-ticker.service', '-o', 'cat', '-n', '1'])).stdout.trim();
  return Number(/tick (\d+)/.exec(out)?.[1] ?? -1);
}

function children(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

// HostKit (root) logs in to PostgreSQL as postgres over the socket through a pg_ident map (README, PostgreSQL admin connection).
async function adminOverSocket(m: TestHost): Promise<void> {
  const conf = '/etc/postgresql/15/main';
  const st = (await m.host.stat(`${conf}/pg_hba.conf`))!;
  const ownership = { uid: st.uid, gid: st.gid, mode: st.mode };
  const hba = (await m.host.readFile(`${conf}/pg_hba.conf`))!.toString();
  await m.host.writeFile(`${conf}/pg_hba.conf`, hba.replace(/^local\s+all\s+postgres\s+peer\s*$/m, 'local all postgres peer map=hostkit'), ownership);
  const ident = (await m.host.readFile(`${conf}/pg_ident.conf`))!.toString();
  await m.host.writeFile(`${conf}/pg_ident.conf`, `${ident}hostkit root postgres\nhostkit postgres postgres\n`, ownership);
  await m.exec('systemctl', ['reload', 'postgresql@15-main']);
}

describeHost('hostkit status, logs and health on a real host', () => {
  const machine = useHost({ bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: SHARED }] });
  let current: { dir: string; commit: string };
  let quarantined: string;

  beforeAll(async () => {
    const m = machine();
    await adminOverSocket(m);
    current = await commitRepo('c1', { 'projects/good.yaml': GOOD, 'projects/bad.yaml': bad('ok', '/srv/bad/healthy') });
    const first = appliedOk(await apply(m, current));
    expect(first.status).toBe('applied');
    // A commit whose health check fails: rolled back, quarantined.
    const failing = await commitRepo('c2', { 'projects/good.yaml': GOOD, 'projects/bad.yaml': bad('v2', '/srv/bad/missing') });
    const second = applied(await apply(m, failing));
    expect(second.status).toBe('rolled-back');
    quarantined = failing.commit;
    // bad breaks by hand: its check fails, and the file it declares is drift.
    await m.host.remove('/srv/bad/healthy');
  });
  afterAll(() => rmSync(SHARED, { recursive: true, force: true }));

  it('status reports the applied commit, the failed run, the quarantine, and each project as it is (JSON, valid against its schema)', async () => {
    const m = machine();
    const run = await hostkit(m, ['status', '--repo', current.dir, '-o', 'json']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const doc = JSON.parse(run.stdout) as StatusDocument;
    const ajv = new Ajv2020({ strict: true });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(path.join(schemaDir(), 'status.schema.json'), 'utf8')) as object);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);

    expect(doc.host).toBe(HOST_NAME);
    expect(doc.commit).toBe(current.commit);
    expect(doc.applied?.commit).toBe(current.commit);
    expect(doc.lastRun).toMatchObject({ type: 'apply', status: 'rolled-back', commit: quarantined, failed: { id: 'health/bad' } });
    expect(doc.quarantined.map((q) => q.commit)).toEqual([quarantined]);
    expect(doc.paused).toEqual([]);
    expect(doc.drift).toMatchObject({ state: 'pending', pending: 1 });
    expect(doc.projects.map((p) => p.name)).toEqual(['bad', 'good']);

    const good = doc.projects.find((p) => p.name === 'good')!;
    expect(good.health).toMatchObject({ state: 'passing', checked: 'unit hk-good.service active, GET https://good.hk.test/ (via 127.0.0.1:443)' });
    expect(good.units.map((u) => [u.choice, u.unit, u.active, u.sub])).toEqual([
      ['service', 'hk-good.service', 'active', 'running'],
      ['worker/ticker', 'hk-good-ticker.service', 'active', 'running'],
    ]);
    for (const u of good.units) {
      expect(u.restarts).toBe(0);
      // As systemd says it (a test host may have no memory accounting: then there is no figure).
      const memory = await unitProperty(m, u.unit, 'MemoryCurrent');
      expect(u.memoryBytes).toBe(/^\d+$/.test(memory) ? Number(memory) : undefined);
      const since = Number((await m.exec('systemctl', ['show', '--timestamp=unix', '--value', '-p', 'ActiveEnterTimestamp', u.unit])).stdout.trim().slice(1));
      expect(u.since).toBe(new Date(since * 1000).toISOString());
    }
    expect(good.sites).toEqual([
      {
        domain: 'good.hk.test',
        aliases: [],
        tls: 'self-signed',
        certificate: expect.objectContaining({ file: '/etc/hostkit/tls/good.hk.test/fullchain.pem', state: 'valid', selfSigned: true, placeholder: false }),
      },
    ]);
    expect(good.sites[0]!.certificate!.daysLeft).toBeGreaterThan(300);
    expect(good.database).toEqual({ name: 'good', owner: 'good', extensions: [], state: 'present' });
    expect(good.firewall).toEqual([{ port: 8443, protocol: 'tcp', from: ['10.0.0.0/8'], state: 'applied' }]);
    expect(good.drift).toEqual({ pending: 0, changes: [] });

    const badProject = doc.projects.find((p) => p.name === 'bad')!;
    expect(badProject.health.state).toBe('failing');
    expect(badProject.health.detail).toBe('health command /usr/bin/test -f /srv/bad/healthy exited 1 (after 1 attempt(s))');
    expect(badProject.units.map((u) => [u.unit, u.active])).toEqual([['hk-bad.service', 'active']]);
    expect(badProject.drift).toEqual({ pending: 1, changes: [expect.objectContaining({ id: 'file/srv/bad/healthy', action: 'create' })] });
    expect(run.stdout).not.toContain(CANARY);
    expect(run.stdout).not.toContain(PLAIN);
  });

  it('status in text: one block per project, the failing one says so', async () => {
    const m = machine();
    const run = await hostkit(m, ['status', '--repo', current.dir]);
    expect(run.exitCode).toBe(0);
    const text = run.stdout;
    expect(text).toMatch(new RegExp(`^HostKit status of ${HOST_NAME} \\(`));
    expect(text).toMatch(new RegExp(`applied +commit ${current.commit.slice(0, 12)} +at `));
    expect(text).toMatch(new RegExp(`last run +\\S+ +apply rolled-back, commit ${quarantined.slice(0, 12)}, \\d+ change\\(s\\); failed at health/bad: `));
    expect(text).toMatch(new RegExp(`quarantined +commit ${quarantined.slice(0, 12)} +since `));
    expect(text).toMatch(/drift +1 change\(s\) pending/);
    const blocks = text.split('\n\n');
    const good = blocks.find((b) => b.startsWith('● good'))!;
    const badBlock = blocks.find((b) => b.startsWith('● bad'))!;
    expect(good.split('\n')[0]).toBe('● good  healthy, in sync');
    expect(good).toMatch(/service +hk-good\.service +active \(running\) since \S+; \d+s ago, 0 restarts/);
    expect(good).toMatch(/worker +hk-good-ticker\.service +active \(running\)/);
    expect(good).toMatch(/site +good\.hk\.test +self-signed certificate valid until \S+ \(\d+ days\)/);
    expect(good).toMatch(/database +good +present/);
    expect(good).toMatch(/firewall +tcp\/8443 +from 10\.0\.0\.0\/8, applied/);
    expect(good).toMatch(/health +passing +unit hk-good\.service active, GET https:\/\/good\.hk\.test\//);
    expect(badBlock.split('\n')[0]).toBe('● bad  unhealthy, 1 change(s) pending');
    expect(badBlock).toMatch(/health +FAILING +health command \/usr\/bin\/test -f \/srv\/bad\/healthy exited 1/);
    expect(badBlock).toMatch(/drift +\+ file\/srv\/bad\/healthy/);
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(PLAIN);
    // --project: that block only.
    const only = await hostkit(m, ['status', '--repo', current.dir, '--project', 'good', '-o', 'json']);
    expect((JSON.parse(only.stdout) as StatusDocument).projects.map((p) => p.name)).toEqual(['good']);
  });

  it('logs -n 5 of a worker prints exactly its last 5 lines', async () => {
    const m = machine();
    const before = await lastTick(m);
    const run = await hostkit(m, ['logs', 'good', '--repo', current.dir, '--unit', 'worker/ticker', '-n', '5']);
    const after = await lastTick(m);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    const numbers = lines.map((l) => Number(TICK.exec(l)?.[1]));
    expect(numbers).toEqual([0, 1, 2, 3, 4].map((i) => numbers[0]! + i));
    expect(numbers[4]).toBeGreaterThanOrEqual(before);
    expect(numbers[4]).toBeLessThanOrEqual(after);
  });

  it.each([
    ['of the whole project', [] as string[]],
    ['of one worker', ['--unit', 'worker/ticker']],
  ])('logs -f %s follows (new lines appear) and stops on SIGINT with exit 0, journalctl with it', async (_, unit) => {
    const m = machine();
    const args = [NODE, ...NODE_FLAGS, CLI, 'logs', 'good', '--repo', current.dir, ...unit, '-n', '1', '-f'];
    const child = spawn('nsenter', ['-t', String(m.leaderPid), '-a', '--', ...args], {
      env: { ...NSPAWN_BASE_ENV, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = once(child, 'exit');
    try {
      const ticks = () =>
        out
          .split('\n')
          .map((l) => Number(TICK.exec(l)?.[1]))
          .filter((n) => !Number.isNaN(n));
      expect(await eventually(async () => ticks().length > 0, 20_000, 100), err).toBe(true);
      const first = ticks()[0]!;
      expect(await eventually(async () => ticks().some((n) => n > first + 2), 10_000, 100)).toBe(true);
      if (unit.length === 0) {
        // A lifecycle command that starts while following is followed too (a unit journalctl did not know of).
        await m.exec('systemd-run', ['--wait', '--collect', '--unit=hostkit-command-good-00000abcde.service', '--', '/bin/true']);
        expect(await eventually(async () => out.includes('hostkit-command-good-00000abcde.service (systemd): '), 10_000, 100), out).toBe(true);
      }
      // Ctrl-C reaches the CLI (nsenter's child); journalctl runs in a process group of its own.
      const cli = children(child.pid!)[0]!;
      const journalctl = children(cli)[0]!;
      expect(readFileSync(`/proc/${journalctl}/comm`, 'utf8').trim()).toBe('journalctl');
      process.kill(cli, 'SIGINT');
      const [code, signal] = await exited;
      expect({ code, signal, err }).toEqual({ code: 0, signal: null, err: '' });
      expect(existsSync(`/proc/${journalctl}`)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it("logs --unit lifecycle shows the project's lifecycle commands; an undeclared --unit is refused, naming the choices", async () => {
    const m = machine();
    const lifecycle = await hostkit(m, ['logs', 'good', '--repo', current.dir, '--unit', 'lifecycle', '-o', 'json']);
    expect(lifecycle.exitCode).toBe(0);
    const lines = lifecycle.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { unit: string; message: string; systemd?: true });
    // systemd's lines about the transient unit the command ran as (its output went back to the apply).
    expect(lines.some((l) => l.message.includes('/bin/echo migrated-good'))).toBe(true);
    expect(lines.some((l) => /Deactivated successfully|Finished/.test(l.message))).toBe(true);
    for (const l of lines) expect(l).toMatchObject({ unit: expect.stringMatching(/^hostkit-command-good-[0-9a-f]{10}\.service$/), systemd: true });
    // bad has no lifecycle command: nothing of good's shows there.
    const wrong = await hostkit(m, ['logs', 'bad', '--repo', current.dir, '--unit', 'lifecycle']);
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stderr).toBe('hostkit: error: Project bad declares no "lifecycle"; --unit takes one of: service [UNKNOWN_UNIT]\n');
    // --since goes to journalctl as one argument; one it cannot read is its error, named.
    const recent = await hostkit(m, ['logs', 'good', '--repo', current.dir, '--unit', 'worker/ticker', '--since', '1 hour ago', '-n', '2']);
    expect(
      recent.stdout
        .trimEnd()
        .split('\n')
        .map((l) => TICK.test(l)),
      recent.stdout + recent.stderr,
    ).toEqual([true, true]);
    const unreadable = await hostkit(m, ['logs', 'good', '--repo', current.dir, '--since', 'the day before; rm -rf /']);
    expect(unreadable.exitCode).toBe(1);
    expect(unreadable.stderr).toMatch(/^hostkit: error: journalctl .*--since=the day before; rm -rf \/.* exited 1: .*\[JOURNAL_READ_FAILED\]\n$/s);
    const nope = await hostkit(m, ['logs', 'good', '--repo', current.dir, '--unit', 'worker/nope']);
    expect(nope.stderr).toBe('hostkit: error: Project good declares no "worker/nope"; --unit takes one of: service, worker/ticker, lifecycle [UNKNOWN_UNIT]\n');
  });

  it('health exits 1 for the failing project, 0 for the healthy one, one line per check', async () => {
    const m = machine();
    const good = await hostkit(m, ['health', 'good', '--repo', current.dir]);
    expect(good.stdout).toMatch(/^ok {4}good {2}unit hk-good\.service active, GET https:\/\/good\.hk\.test\/ \(via 127\.0\.0\.1:443\) \(\d+ ms\)\n$/);
    expect(good.exitCode).toBe(0);
    const badRun = await hostkit(m, ['health', 'bad', '--repo', current.dir]);
    expect(badRun.stdout).toMatch(/^FAIL {2}bad {2}health command \/usr\/bin\/test -f \/srv\/bad\/healthy exited 1/);
    expect(badRun.exitCode).toBe(1);
    const all = await hostkit(m, ['health', '--repo', current.dir]);
    expect(
      all.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ).toEqual(['FAIL bad', 'ok good']);
    expect(all.exitCode).toBe(1);
  });
});
