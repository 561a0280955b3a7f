// SshHost against sshd running inside a booted test host, reached from this
// machine through a ProxyCommand into the host's network namespace, with real
// keys. First the Host contract (what smoke.test.ts and the local/nspawn specs
// assert), then the engine: plan, reconcile and rollback of one scenario over
// SSH, compared with the same run through NspawnHost; then host keys.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findRun, rollbackRun } from '../../reconciler/apply/rollback.js';
import { renderRestorePlan } from '../../reconciler/commands/safety.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { toJsonPlan, type JsonPlan } from '../../reconciler/diff/render/json.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import { hostHttpRequest } from '../../reconciler/hosts/http.js';
import { openSshHost, type SshHost } from '../../reconciler/hosts/ssh.js';
import type { Host } from '../../reconciler/hosts/types.js';
import { describeHost, useHost } from './harness.js';
import { admin, CLUSTER, mapRootToPostgres } from './postgres-admin.js';
import { appliedOk, eventually, HOST_NAME, repo } from './reconcile.js';
import { sshInto, type SshAccess } from './ssh.js';

const root = { uid: 0, gid: 0, mode: 0o755 };
const STATE = '/var/lib/hostkit';
const ENV = { SHOP_DB_PASSWORD: 'shop-Secret 1' };

// One of each: a File, a service (systemd unit, env file), an nginx site with a
// health check through it, and a PostgreSQL role and database
// (safe-apply.test.ts and postgresql.test.ts run the same kinds).
const SHOP = `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: shop
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "9301", --bind, 127.0.0.1, --directory, /srv/shop]
    port: 9301
  files:
    - name: version.txt
      content: "v1\\n"
  domains:
    - name: shop.hk.test
      tls: none
  health:
    http:
      path: /version.txt
      bodyContains: v1
    timeout: 2s
    retries: 4
  database:
    password: { env: SHOP_DB_PASSWORD }
`;
const MOTD = `apiVersion: hostkit.dev/v1
kind: File
metadata:
  name: shop-motd
  project: shop
spec:
  placement:
    hosts: [${HOST_NAME}]
  path: /var/www/shop/motd.txt
  content: "served over ssh\\n"
`;

function run(host: Host, repoDir: string, dryRun: boolean): Promise<ReconcileOutcome> {
  return reconcileHost({ repoDir, hostName: HOST_NAME, host, dryRun, log: silentLogger(), env: ENV });
}

/** The plan as JSON; secrets appear as HMACs under a key of the run's until the first apply stores one, so those are masked. */
function jsonPlan(outcome: ReconcileOutcome): JsonPlan {
  if (outcome.stage === 'invalid') throw new Error(`invalid repository: ${JSON.stringify(outcome.repo.diagnostics)}`);
  return JSON.parse(JSON.stringify(toJsonPlan(outcome.planned.plan)).replace(/hmac:[0-9a-f]+/g, 'hmac:*')) as JsonPlan;
}

/** The ids of the changes a plan would make (noops left out). */
function pending(plan: JsonPlan): string[] {
  return plan.changes.filter((c) => c.action !== 'noop').map((c) => `${c.action} ${c.id}`);
}

/** What an apply did, without its timings and run id. */
function summary(outcome: ReconcileOutcome) {
  const result = appliedOk(outcome);
  return { status: result.status, steps: result.steps.map((s) => `${s.action} ${s.id}`), health: result.health, warnings: result.warnings };
}

async function rollbackLast(host: Host) {
  const target = await findRun(host, STATE, { last: true });
  const dry = await rollbackRun(target, { dryRun: true, log: silentLogger() });
  const done = await rollbackRun(target, { dryRun: false, log: silentLogger() });
  return { plan: renderRestorePlan(dry.plan).replace(target.record.id, 'RUN'), errors: done.result?.errors };
}

/** HostKit's private directories on this machine that name `pid` as their owner. */
async function ownedBy(pid: number): Promise<string[]> {
  const parent = os.tmpdir().length <= 40 ? os.tmpdir() : '/tmp';
  const found: string[] = [];
  for (const name of (await readdir(parent)).filter((n) => /^hostkit-ssh-[A-Za-z0-9]{6}$/.test(n))) {
    const owner = await readFile(path.join(parent, name, 'owner'), 'utf8').catch(() => '');
    if (owner.trim() === String(pid)) found.push(path.join(parent, name));
  }
  return found;
}

/** Whether a master answers on this control socket (ssh -O check). */
async function masterAnswers(control: string): Promise<boolean> {
  return (await execa('ssh', ['-F', 'none', '-o', `ControlPath=${control}`, '-O', 'check', 'x'], { reject: false })).exitCode === 0;
}

/** A plain (no sudo) connection's forwarding of PostgreSQL's socket directory, for comparison; closed when the test file ends. */
const plainHosts: SshHost[] = [];
async function plainLocal(options: { target: SshHost['target']; configFile: string }): Promise<string | undefined> {
  const plain = await openSshHost(options);
  plainHosts.push(plain);
  return plain.localPath('/run/postgresql');
}

describeHost('reconciler/hosts/ssh (SshHost over sshd in a real host)', () => {
  const machine = useHost();
  let access: SshAccess;
  let ssh: SshHost;
  let scratch: string;

  beforeAll(async () => {
    access = await sshInto(machine());
    ssh = await openSshHost({ target: access.target, configFile: access.configFile });
    scratch = await mkdtemp(path.join(os.tmpdir(), 'hostkit-ssh-test-'));
    // The documented admin set-up: root logs in as postgres over the socket through a pg_ident map.
    await mapRootToPostgres(machine());
    await machine().exec('systemctl', ['reload', CLUSTER]);
    expect(await eventually(async () => (await admin(machine(), 'SELECT 1').catch(() => '')) === '1', 10_000)).toBe(true);
  });
  afterAll(async () => {
    for (const plain of plainHosts) await plain.close();
    await ssh?.close();
    await access?.dispose();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('reaches the host itself through one master and one helper: its hostname, its PID 1, root', async () => {
    expect(await ssh.hostname()).toBe(machine().hostname);
    expect(ssh.name).toBe(`ssh:${machine().hostname}`);
    expect(await ssh.exec('cat', ['/proc/1/comm'])).toEqual({ exitCode: 0, stdout: 'systemd\n', stderr: '' });
    expect((await ssh.exec('id', ['-u'])).stdout).toBe('0\n');
    // The helper is one python3 process on the host, its session's child.
    expect((await machine().exec('ps', ['-o', 'comm=', '-p', String(ssh.helperPid)])).stdout.trim()).toBe('python3');
    expect(ssh.stats().processes).toBe(2);
  });

  it('writes atomically with owner and mode as the host sees them; reads, stats, lists, chowns and removes', async () => {
    await ssh.mkdir('/srv/hkt', root);
    await ssh.writeFile('/srv/hkt/site.conf', 'server {}\n', { uid: 33, gid: 33, mode: 0o640 });
    await ssh.writeFile('/srv/hkt/site.conf', 'server { listen 80; }\n', { uid: 33, gid: 33, mode: 0o640 });
    await ssh.flush(); // writes are pipelined: done on the host once flushed (or once a later request of the helper's is answered)
    expect((await machine().exec('stat', ['-c', '%a:%U:%G', '/srv/hkt/site.conf'])).stdout).toBe('640:www-data:www-data\n');
    expect((await machine().exec('cat', ['/srv/hkt/site.conf'])).stdout).toBe('server { listen 80; }\n');
    expect(await ssh.readdir('/srv/hkt')).toEqual(['site.conf']);
    expect(await ssh.stat('/srv/hkt/site.conf')).toEqual({ type: 'file', mode: 0o640, uid: 33, gid: 33, size: 22 });
    expect((await ssh.readFile('/srv/hkt/site.conf'))?.toString()).toBe('server { listen 80; }\n');
    await ssh.setOwnership('/srv/hkt/site.conf', { uid: 0, gid: 33, mode: 0o600 });
    await ssh.flush();
    expect((await machine().exec('stat', ['-c', '%a:%U:%G', '/srv/hkt/site.conf'])).stdout).toBe('600:root:www-data\n');
    await ssh.remove('/srv/hkt/site.conf');
    await ssh.remove('/srv/hkt');
    await ssh.flush();
    expect(await machine().host.stat('/srv/hkt')).toBeUndefined();
  });

  it('refuses a managed path through a symlinked directory or at a symlink, on the host', async () => {
    await machine().exec('sh', [
      '-c',
      'mkdir -p /srv/real && echo inside > /srv/real/target && ln -sfn /srv/real /srv/linked && ln -sfn /srv/real/target /srv/real/link',
    ]);
    const own = { uid: 0, gid: 0, mode: 0o644 };
    // A void op's refusal is told by every value request (here a read) until flush acknowledges it.
    await ssh.writeFile('/srv/linked/new', 'x', own, { managed: true });
    const refused = {
      code: 'HOST_PATH_SYMLINK',
      data: { symlink: '/srv/linked', op: 'write' },
      message: expect.stringContaining(`is a symlink on ssh:${machine().hostname}`),
    };
    await expect(ssh.readFile('/srv/real/target')).rejects.toMatchObject(refused);
    await expect(ssh.flush()).rejects.toMatchObject(refused);
    await expect(ssh.readFile('/srv/real/link', { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { symlink: '/srv/real/link' } });
    await ssh.mkdir('/srv/linked/dir', own, { managed: true });
    await expect(ssh.flush()).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { op: 'mkdir' } });
    expect((await ssh.readFile('/srv/real/target', { managed: true }))?.toString()).toBe('inside\n');
    expect(await machine().host.stat('/srv/real/new')).toBeUndefined();
  });

  it('appends with sync, creating the journal with owner and mode; a symlink at the last component is refused', async () => {
    await ssh.appendFile('/run/hkt-events.jsonl', '{"a":1}\n', { uid: 0, gid: 0, mode: 0o600 }, { sync: true });
    await ssh.appendFile('/run/hkt-events.jsonl', '{"b":2}\n', { uid: 0, gid: 0, mode: 0o600 });
    await ssh.flush();
    expect((await machine().exec('stat', ['-c', '%a', '/run/hkt-events.jsonl'])).stdout).toBe('600\n');
    expect((await machine().host.readFile('/run/hkt-events.jsonl'))?.toString()).toBe('{"a":1}\n{"b":2}\n');
    await machine().exec('ln', ['-sfn', '/srv/real/target', '/run/hkt-link']);
    await ssh.appendFile('/run/hkt-link', 'x\n', { uid: 0, gid: 0, mode: 0o600 });
    await expect(ssh.flush()).rejects.toMatchObject({ code: 'ELOOP', path: '/run/hkt-link' });
  });

  it('runs commands with exit codes, input, env and cwd; a timeout ends its process group inside', async () => {
    expect(await ssh.exec('sh', ['-c', 'echo oops >&2; exit 3'])).toEqual({ exitCode: 3, stdout: '', stderr: 'oops\n' });
    expect((await ssh.exec('cat', [], { input: 'hello' })).stdout).toBe('hello');
    expect((await ssh.exec('printenv', ['HKT_VAR'], { env: { HKT_VAR: 'a b' } })).stdout).toBe('a b\n');
    expect((await ssh.exec('pwd', [], { cwd: '/etc/nginx' })).stdout).toBe('/etc/nginx\n');
    expect((await ssh.exec('echo', ['$HOME', '; true'])).stdout).toBe('$HOME ; true\n');
    expect((await ssh.exec('sh', ['-c', 'kill -TERM $$'])).exitCode).toBe(143);
    await expect(ssh.exec('/no/such/command', [])).rejects.toMatchObject({ code: 'EXEC_FAILED' });
    const started = Date.now();
    await expect(ssh.exec('sh', ['-c', 'trap "" TERM; sleep 60 & wait'], { timeoutMs: 300, killGraceMs: 300 })).rejects.toMatchObject({
      code: 'EXEC_TIMED_OUT',
      data: { signal: 'SIGKILL' },
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await machine().host.exec('pgrep', ['-x', '--runstates', 'D,R,S,T', 'sleep'])).exitCode).toBe(1);
  });

  it('a lock excludes every other holder on the host, and is free again as soon as its connection dies', async () => {
    const held = await ssh.lock('/run/hkt.lock', { waitMs: 0 });
    expect(held).toBeDefined();
    expect(await machine().host.lock('/run/hkt.lock', { waitMs: 200 })).toBeUndefined();
    await held!.release();
    const local = await machine().host.lock('/run/hkt.lock', { waitMs: 0 });
    expect(await ssh.lock('/run/hkt.lock', { waitMs: 200 })).toBeUndefined();
    await local!.release();

    // A second connection takes it; then its sshd session is killed on the host (the network gone).
    const other = await openSshHost({ target: access.target, configFile: access.configFile });
    try {
      expect(await other.lock('/run/hkt.lock', { waitMs: 0 })).toBeDefined();
      expect(await ssh.lock('/run/hkt.lock', { waitMs: 0 })).toBeUndefined();
      const session = (await machine().exec('ps', ['-o', 'ppid=', '-p', String(other.helperPid)])).stdout.trim();
      const pending = other.exec('sleep', ['30']).catch((e: unknown) => e);
      await machine().exec('kill', ['-KILL', session]);
      expect(await pending).toMatchObject({ code: 'SSH_CONNECT_FAILED' });
      const again = await ssh.lock('/run/hkt.lock', { waitMs: 5_000 });
      expect(again).toBeDefined();
      await again!.release();
    } finally {
      await other.close();
    }
  });

  it("connects to a port on the host's own loopback through the master, and a closed one is refused", async () => {
    // Something only the host's loopback serves: a marker file, from a server bound to 127.0.0.1 inside.
    await machine().exec('sh', ['-c', 'mkdir -p /srv/probe && echo "inside $(cat /etc/hostname)" > /srv/probe/marker']);
    await machine().exec('systemd-run', [
      '--unit=hkt-probe',
      '/usr/bin/python3',
      '-m',
      'http.server',
      '9399',
      '--bind',
      '127.0.0.1',
      '--directory',
      '/srv/probe',
    ]);
    expect(await eventually(async () => (await machine().host.exec('bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/9399'])).exitCode === 0, 10_000)).toBe(true);
    const before = ssh.stats();
    const response = await hostHttpRequest(ssh, { port: 9399, path: '/marker' });
    expect(response).toMatchObject({ status: 200, body: `inside ${machine().hostname}\n` });
    expect(ssh.stats().processes).toBe(before.processes + 1);
    // A name is resolved on the host: its /etc/hosts says where localhost is.
    expect(await hostHttpRequest(ssh, { port: 9399, address: 'localhost', path: '/marker' })).toMatchObject({ status: 200 });
    await expect(ssh.connect(9399, { address: '-oProxyCommand=x' })).rejects.toMatchObject({ code: 'HOST_INVALID_ADDRESS' });
    await expect(ssh.connect(9398, { timeoutMs: 3_000 })).rejects.toMatchObject({
      code: 'HOST_CONNECT_FAILED',
      message: expect.stringMatching(/^Could not connect to 127\.0\.0\.1:9398 on ssh:test-host: the host refused the channel/),
    });
    await machine().exec('systemctl', ['stop', 'hkt-probe']);
  });

  it("forwards PostgreSQL's socket directory: node-postgres connects here and peer authentication sees root", async () => {
    const local = await ssh.localPath('/run/postgresql');
    expect(local).toMatch(/^\/.*\/sockets-1$/);
    const pg = (await import('pg')).default;
    const client = new pg.Client({ host: local, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      const { rows } = await client.query<{ user: string; host: string }>("SELECT current_user AS user, current_setting('cluster_name') AS host");
      expect(rows).toEqual([{ user: 'postgres', host: '15/main' }]);
    } finally {
      await client.end();
    }
    // The second call reuses the forwarding.
    const processes = ssh.stats().processes;
    expect(await ssh.localPath('/run/postgresql')).toBe(local);
    expect(ssh.stats().processes).toBe(processes);
  });

  it('plan, reconcile and rollback over SSH give what the same run through NspawnHost gives', async () => {
    const m = machine();
    const repoDir = await repo({ 'projects/shop.yaml': SHOP, 'files/motd.yaml': MOTD });
    // The same plan, observed through either host.
    const planned = jsonPlan(await run(ssh, repoDir, true));
    expect(pending(planned).length).toBeGreaterThan(5);
    expect(planned.changes.map((c) => c.kind)).toEqual(expect.arrayContaining(['file', 'unit', 'site', 'pgrole', 'pgdatabase']));
    expect(jsonPlan(await run(m.host, repoDir, true))).toEqual(planned);

    // Applied over SSH: served through nginx (the health check went through the master), file and database in place.
    const overSsh = summary(await run(ssh, repoDir, false));
    expect(overSsh.status).toBe('applied');
    expect(overSsh.health).toEqual([{ project: 'shop', ok: true, url: 'http://shop.hk.test/version.txt (via 127.0.0.1:80)' }]);
    expect((await m.exec('cat', ['/var/www/shop/motd.txt'])).stdout).toBe('served over ssh\n');
    expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');
    expect(await admin(m, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'")).toBe('shop');
    expect(pending(jsonPlan(await run(ssh, repoDir, true)))).toEqual([]);
    expect(pending(jsonPlan(await run(m.host, repoDir, true)))).toEqual([]);

    // A noop over SSH: what it costs.
    const before = ssh.stats();
    const started = Date.now();
    expect(pending(jsonPlan(await run(ssh, repoDir, true)))).toEqual([]);
    const after = ssh.stats();
    process.stderr.write(
      `[ssh] noop plan of ${planned.changes.length} resources over SSH: ${after.requests - before.requests} requests, ` +
        `${after.roundTrips - before.roundTrips} round trips, ${after.processes - before.processes} ssh processes, ${Date.now() - started} ms\n`,
    );

    // Rolled back over SSH: the restore plan either host computes is the same.
    const last = await findRun(m.host, STATE, { last: true });
    const dryThroughNspawn = renderRestorePlan((await rollbackRun(last, { dryRun: true, log: silentLogger() })).plan).replace(last.record.id, 'RUN');
    const sshRollback = await rollbackLast(ssh);
    expect(sshRollback.plan).toBe(dryThroughNspawn);
    expect(sshRollback.errors).toEqual([]);
    expect(await m.host.stat('/var/www/shop/motd.txt')).toBeUndefined();
    expect(await m.host.stat('/etc/systemd/system/hk-shop.service')).toBeUndefined();
    const afterSshRollback = jsonPlan(await run(ssh, repoDir, true));
    expect(jsonPlan(await run(m.host, repoDir, true))).toEqual(afterSshRollback);

    // The database, its role and the project's account stay (they hold data); removed by hand with
    // HostKit's state (its runs, its inventory), the host is as it was before the SSH run.
    await admin(m, 'DROP DATABASE shop');
    await admin(m, 'DROP ROLE shop');
    await m.exec('userdel', ['shop']);
    await m.exec('rm', ['-rf', STATE]);
    expect(jsonPlan(await run(m.host, repoDir, true))).toEqual(planned);

    // The same apply and rollback through NspawnHost: the same steps, health and restore plan.
    expect(summary(await run(m.host, repoDir, false))).toEqual(overSsh);
    const nspawnRollback = await rollbackLast(m.host);
    expect(nspawnRollback).toEqual(sshRollback);
  });

  it('a login that is not root runs the helper as itself, or under sudo -n when asked; a refused sudo is named', async () => {
    const deploy = await sshInto(machine(), { user: 'deploy' });
    const options = { target: deploy.target, configFile: deploy.configFile };
    try {
      const plain = await openSshHost(options);
      try {
        expect((await plain.exec('id', ['-un'])).stdout).toBe('deploy\n');
        await plain.writeFile('/etc/hkt-deploy', 'x', { uid: 0, gid: 0, mode: 0o600 });
        await expect(plain.flush()).rejects.toMatchObject({ code: 'EACCES', path: '/etc/hkt-deploy' });
      } finally {
        await plain.close();
      }
      const sudo = await openSshHost({ ...options, sudo: true });
      try {
        expect((await sudo.exec('id', ['-un'])).stdout).toBe('root\n');
        await sudo.writeFile('/etc/hkt-deploy', 'as root\n', { uid: 0, gid: 0, mode: 0o600 });
        await sudo.flush();
        expect((await machine().exec('stat', ['-c', '%U %a', '/etc/hkt-deploy'])).stdout).toBe('root 600\n');
        // PostgreSQL's socket is opened by root as for a local HostKit (peer authentication maps root to postgres), not by the login.
        const pg = (await import('pg')).default;
        const local = await sudo.localPath('/run/postgresql');
        for (let i = 0; i < 2; i++) {
          const client = new pg.Client({ host: local, user: 'postgres', database: 'postgres' });
          await client.connect();
          try {
            const { rows } = await client.query<{ user: string }>('SELECT current_user AS user');
            expect(rows).toEqual([{ user: 'postgres' }]);
          } finally {
            await client.end();
          }
        }
        // The plain login's forwarding is authenticated as deploy, which PostgreSQL does not know.
        const asDeploy = new pg.Client({ host: await plainLocal(options), user: 'postgres', database: 'postgres' });
        await expect(asDeploy.connect()).rejects.toThrow(/Peer authentication failed|role "deploy" does not exist/);
        await asDeploy.end().catch(() => undefined);
      } finally {
        await sudo.close();
      }
      await machine().exec('rm', ['/etc/sudoers.d/90-hostkit-test-deploy']);
      await expect(openSshHost({ ...options, sudo: true })).rejects.toMatchObject({
        code: 'SSH_REMOTE_HELPER_FAILED',
        message: "HostKit's helper could not start on ssh:test-host: sudo -n refused: sudo: a password is required",
      });
    } finally {
      await deploy.dispose();
    }
  });

  /** sshd processes of root's connections on the host. */
  const rootSessions = async () => (await machine().exec('ps', ['-eo', 'args='])).stdout.split('\n').filter((l) => l.startsWith('sshd: root')).length;

  it('a HostKit that dies without closing leaves a directory and a master: the next connection ends both', async () => {
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/reconciler/hosts/ssh.js');
    const script = `const { openSshHost } = await import(${JSON.stringify(dist)});
const host = await openSshHost({ target: ${JSON.stringify(access.target)}, configFile: ${JSON.stringify(access.configFile)} });
await host.hostname();
process.stdout.write('open\\n');
setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the child exited ${code}`)));
    });
    const dirs = await ownedBy(child.pid!);
    expect(dirs).toHaveLength(1);
    const withChild = await rootSessions();
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const control = path.join(dirs[0]!, 'control');
    expect(await masterAnswers(control)).toBe(true);

    const next = await openSshHost({ target: access.target, configFile: access.configFile });
    try {
      expect(existsSync(dirs[0]!)).toBe(false);
      // Its master was told to exit: on the host, the child's connection is gone (the new one stands in its place).
      expect(await eventually(async () => (await rootSessions()) === withChild, 10_000)).toBe(true);
    } finally {
      await next.close();
    }
  });

  it('a changed host key is refused, naming the host and the fingerprint of the key it presented', async () => {
    const rotated = await access.rotateHostKey();
    expect(rotated).not.toBe(access.hostKeyFingerprint);
    const error = await openSshHost({ target: access.target, configFile: access.configFile }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SSH_HOST_KEY_CHANGED', retryable: false, data: { host: machine().hostname, fingerprint: rotated } });
    expect((error as Error).message).toContain(`The host key of ssh://root@${machine().hostname} changed: it presented ssh-ed25519 ${rotated}`);
    // Not even with accept-new.
    await expect(openSshHost({ target: access.target, configFile: access.configFile, acceptNewHostKey: true })).rejects.toMatchObject({
      code: 'SSH_HOST_KEY_CHANGED',
    });
    // The open connection was made before the change and goes on.
    expect(await ssh.hostname()).toBe(machine().hostname);
  });

  it('an unknown host key is refused without acceptNewHostKey, and trusted (and recorded) with it', async () => {
    const knownHostsFile = path.join(scratch, 'known_hosts');
    await writeFile(knownHostsFile, '', { mode: 0o600 });
    const options = { target: access.target, configFile: access.configFile, knownHostsFile };
    const current = await access.rotateHostKey();
    const refused = await openSshHost(options).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'SSH_HOST_KEY_UNKNOWN', data: { fingerprint: current, knownHosts: knownHostsFile } });
    expect((refused as Error).message).toMatch(
      new RegExp(`^The host key of ssh://root@test-host \\(ssh-ed25519 ${current.replace(/[+/]/g, '\\$&')}\\) is not in `),
    );
    expect(await readFile(knownHostsFile, 'utf8')).toBe('');

    const trusted = await openSshHost({ ...options, acceptNewHostKey: true });
    try {
      expect(await trusted.hostname()).toBe(machine().hostname);
    } finally {
      await trusted.close();
    }
    expect(await readFile(knownHostsFile, 'utf8')).toMatch(/^test-host ssh-ed25519 \S+\n$/);
    // Recorded: the next connection needs no accept-new.
    const again = await openSshHost(options);
    await again.close();

    // A known_hosts file ssh_config chose is the one named.
    const chosen = path.join(scratch, 'known_hosts_prod');
    await writeFile(chosen, '', { mode: 0o600 });
    const config = path.join(scratch, 'ssh_config_prod');
    await writeFile(config, (await readFile(access.configFile, 'utf8')).replace(/UserKnownHostsFile \S+/, `UserKnownHostsFile ${chosen}`));
    const named = await openSshHost({ target: access.target, configFile: config }).catch((e: unknown) => e);
    expect(named).toMatchObject({ code: 'SSH_HOST_KEY_UNKNOWN', data: { knownHosts: chosen } });
    expect((named as Error).message).toContain(`is not in ${chosen}.`);
  });
});
