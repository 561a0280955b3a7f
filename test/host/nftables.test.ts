import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, expect, it } from 'vitest';
import { HostKitError } from '../../reconciler/core/errors.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { createNftablesDriver, nftablesDriver, type ConfirmCheck } from '../../reconciler/drivers/nftables/index.js';
import { drivers } from '../../reconciler/drivers/registry.js';
import type { AnyDriver } from '../../reconciler/drivers/types.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import type { AppendOptions, ConnectOptions, ExecOptions, Host, Ownership } from '../../reconciler/hosts/types.js';
import { writeRepo } from '../support/fixtures.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, eventually, HOST_NAME, service } from './reconcile.js';

// Tables HostKit does not own: they must come through every apply and rollback untouched (same handles).
const FOREIGN = `table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.88.0.0/16 oifname "eth0" masquerade
  }
}
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
  }
}
`;

function hostManifest(firewall: string): string {
  return `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: /var/lib/hostkit
  firewall:
${firewall}`;
}

function openings(name: string, list: string): string {
  return `apiVersion: hostkit.dev/v1
kind: FirewallRules
metadata:
  name: ${name}
  project: ${name}
spec:
  placement:
    hosts: [${HOST_NAME}]
  openings:
${list}`;
}

// 8080: loopback, the probe network and its IPv6 prefix; 8081: another network only; 8082: never opened.
const WEB = openings(
  'web',
  `    - { port: 8080, from: [127.0.0.1/8, 192.0.2.0/24, "2001:db8:2::/64"] }
    - { port: 8081, from: [198.51.100.0/24] }
    - { port: 5353, protocol: udp }
`,
);
const EXTRA = openings('extra', '    - { port: 8083 }\n');

function firewallRepo(options: { confirmTimeout?: string; extra?: Record<string, string> } = {}): Promise<string> {
  const timeout = options.confirmTimeout ? `    confirmTimeout: ${options.confirmTimeout}\n` : '';
  return writeRepo({ 'hosts/test-host.yaml': hostManifest(`    input: drop\n${timeout}`), 'firewall/web.yaml': WEB, ...options.extra });
}

/** The registry, with the firewall driver a test needs (a forced confirm failure, a bad render) and a host of its choice. */
function reconcileFw(host: Host, repoDir: string, options: { dryRun?: boolean; driver?: AnyDriver } = {}): Promise<ReconcileOutcome> {
  return reconcileHost({
    repoDir,
    hostName: HOST_NAME,
    host,
    dryRun: options.dryRun ?? false,
    log: silentLogger(),
    env: {},
    drivers: new Map([...drivers, ['firewall', options.driver ?? nftablesDriver]]),
  });
}

/** Delegates to the booted host, records every command, and can be cut off (every call then fails). */
class RecordingHost implements Host {
  readonly calls: { file: string; args: string[] }[] = [];
  cut = false;
  private readonly inner: Host;

  constructor(inner: Host) {
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }

  private reach(): void {
    if (this.cut) throw new HostKitError('EXEC_FAILED', `${this.inner.name} is unreachable (simulated)`, { retryable: true });
  }

  async exec(file: string, args: readonly string[], options?: ExecOptions) {
    this.reach();
    this.calls.push({ file, args: [...args] });
    return this.inner.exec(file, args, options);
  }
  async readFile(p: string) {
    this.reach();
    return this.inner.readFile(p);
  }
  async stat(p: string) {
    this.reach();
    return this.inner.stat(p);
  }
  async writeFile(p: string, data: Buffer | string, o: Ownership) {
    this.reach();
    return this.inner.writeFile(p, data, o);
  }
  async appendFile(p: string, data: Buffer | string, o: Ownership, options?: AppendOptions) {
    this.reach();
    return this.inner.appendFile(p, data, o, options);
  }
  async mkdir(p: string, o: Ownership) {
    this.reach();
    return this.inner.mkdir(p, o);
  }
  async setOwnership(p: string, o: Ownership) {
    this.reach();
    return this.inner.setOwnership(p, o);
  }
  async remove(p: string) {
    this.reach();
    return this.inner.remove(p);
  }
  async readdir(p: string) {
    this.reach();
    return this.inner.readdir(p);
  }
  async readlink(p: string) {
    this.reach();
    return this.inner.readlink(p);
  }
  async symlink(target: string, p: string) {
    this.reach();
    return this.inner.symlink(target, p);
  }
  async hostname() {
    this.reach();
    return this.inner.hostname();
  }
  async lock(p: string, options: { waitMs: number }) {
    this.reach();
    return this.inner.lock(p, options);
  }
  async connect(port: number, options?: ConnectOptions) {
    this.reach();
    return this.inner.connect(port, options);
  }
  localPath(p: string) {
    return this.inner.localPath(p);
  }

  /** `nft -f` runs (transactions), not `nft -c -f` checks. */
  transactions(): number {
    return this.calls.filter((c) => c.file === 'nft' && c.args.includes('-f') && !c.args.includes('-c')).length;
  }
}

describeHost('reconciler/drivers/nftables on a real host', () => {
  const machine = useHost();

  const table = async (m: TestHost) => (await m.host.exec('nft', ['list', 'table', 'inet', 'hostkit'])).stdout;
  const foreignJson = async (m: TestHost) => {
    const all = JSON.parse((await m.exec('nft', ['-j', 'list', 'ruleset'])).stdout) as {
      nftables: Record<string, { family?: string; table?: string; name?: string }>[];
    };
    return all.nftables.filter((o) => {
      const v = Object.values(o)[0]!;
      return !(v.family === 'inet' && (v.table ?? v.name) === 'hostkit');
    });
  };
  const timer = async (m: TestHost) => (await m.host.exec('systemctl', ['is-active', 'hostkit-nft-revert.timer'])).stdout.trim();
  // HTTP status seen from the probe network namespace (another "machine" on 192.0.2.0/24 behind a veth pair).
  const fromProbe = async (m: TestHost, url: string) =>
    (
      await m.host.exec('ip', [
        'netns',
        'exec',
        'probe',
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--connect-timeout',
        '1',
        '--max-time',
        '3',
        url,
      ])
    ).stdout.trim();
  let foreignBefore: unknown;

  beforeAll(async () => {
    const m = machine();
    await m.exec('nft', ['-f', '-'], { input: FOREIGN });
    foreignBefore = await foreignJson(m);
    // A second network namespace joined by a veth pair: traffic from it enters the host on hk0 and crosses the input hook.
    await m.exec('ip', ['netns', 'add', 'probe']);
    await m.exec('ip', ['link', 'add', 'hk0', 'type', 'veth', 'peer', 'name', 'hk1', 'netns', 'probe']);
    await m.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'hk0']);
    await m.exec('ip', ['-6', 'addr', 'add', '2001:db8:2::1/64', 'dev', 'hk0', 'nodad']);
    await m.exec('ip', ['link', 'set', 'hk0', 'up']);
    await m.exec('ip', ['-n', 'probe', 'addr', 'add', '192.0.2.2/24', 'dev', 'hk1']);
    await m.exec('ip', ['-n', 'probe', '-6', 'addr', 'add', '2001:db8:2::2/64', 'dev', 'hk1', 'nodad']);
    await m.exec('ip', ['-n', 'probe', 'link', 'set', 'hk1', 'up']);
    for (const port of ['8080', '8081', '8082', '8083']) {
      await m.exec('systemd-run', [`--unit=probe-http-${port}`, '--quiet', '--', 'python3', '-m', 'http.server', port, '--bind', '::', '--directory', '/tmp']);
    }
    // Before any table: everything answers from the probe network.
    expect(await eventually(async () => (await fromProbe(m, 'http://192.0.2.1:8082/')) === '200', 10_000)).toBe(true);
  });

  it('applies the table: drop policy, established/loopback/SSH first, openings reachable and nothing else', async () => {
    const m = machine();
    const host = new RecordingHost(m.host);
    const outcome = await reconcileFw(host, await firewallRepo());
    expect(appliedOk(outcome).status).toBe('applied');
    if (outcome.stage === 'applied') {
      expect(outcome.result.steps.map((s) => s.id)).toEqual(['firewall/hostkit']);
      expect(outcome.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')).toMatchObject({ action: 'create', reason: 'table missing' });
    }
    expect(host.transactions()).toBe(1);

    const lines = (await table(m)).split('\n').map((l) => l.trim());
    const input = lines.indexOf('chain input {');
    expect(lines.slice(input + 1, input + 5)).toEqual([
      'type filter hook input priority filter; policy drop;',
      'ct state established,related accept',
      'iif "lo" accept',
      'tcp dport 22 accept comment "ssh"',
    ]);
    expect(lines).toContain('ip saddr 127.0.0.0/8 tcp dport 8080 accept comment "FirewallRules/web"');
    expect(lines).toContain('ip6 saddr 2001:db8:2::/64 tcp dport 8080 accept comment "FirewallRules/web"');
    expect(lines).toContain('udp dport 5353 accept comment "FirewallRules/web"');

    // From inside, over loopback; from the probe network: the opened port only.
    expect((await m.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', 'http://127.0.0.1:8080/'])).stdout).toBe('200');
    expect(await fromProbe(m, 'http://192.0.2.1:8080/')).toBe('200');
    expect(await fromProbe(m, 'http://[2001:db8:2::1]:8080/')).toBe('200');
    expect(await fromProbe(m, 'http://192.0.2.1:8081/')).toBe('000'); // opened for 198.51.100.0/24 only
    expect(await fromProbe(m, 'http://192.0.2.1:8082/')).toBe('000'); // never opened

    expect(await timer(m)).not.toBe('active'); // confirmed: the revert was cancelled
    expect((await m.host.readFile('/var/lib/hostkit/nftables-revert.nft'))!.toString()).toContain('delete table inet hostkit');
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });

  it('applying again changes nothing: the plan is a noop, no nft -f runs, the ruleset is identical (handles included)', async () => {
    const m = machine();
    const before = (await m.exec('nft', ['-j', 'list', 'ruleset'])).stdout;
    const host = new RecordingHost(m.host);
    const outcome = await reconcileFw(host, await firewallRepo());
    expect(applied(outcome).status).toBe('no-changes');
    if (outcome.stage === 'applied') expect(outcome.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!.action).toBe('noop');
    expect(host.transactions()).toBe(0);
    expect(host.calls.filter((c) => c.file === 'nft').map((c) => c.args.join(' '))).toEqual(['-j list table inet hostkit']);
    expect((await m.exec('nft', ['-j', 'list', 'ruleset'])).stdout).toBe(before);
  });

  it('a rule deleted and one added by hand are drift in the next dry run; the next apply restores the table', async () => {
    const m = machine();
    const live = JSON.parse((await m.exec('nft', ['-j', 'list', 'table', 'inet', 'hostkit'])).stdout) as {
      nftables: { rule?: { handle: number; expr: unknown[] } }[];
    };
    const probeRule = live.nftables.find((o) => o.rule && JSON.stringify(o.rule.expr).includes('"192.0.2.0"'))!.rule!;
    await m.exec('nft', ['delete', 'rule', 'inet', 'hostkit', 'input', 'handle', String(probeRule.handle)]);
    await m.exec('nft', ['add', 'rule', 'inet', 'hostkit', 'input', 'tcp', 'dport', '8082', 'accept']);
    expect(await fromProbe(m, 'http://192.0.2.1:8080/')).toBe('000');
    expect(await fromProbe(m, 'http://192.0.2.1:8082/')).toBe('200');

    const repoDir = await firewallRepo();
    const plan = await reconcileFw(m.host, repoDir, { dryRun: true });
    expect(plan.stage).toBe('planned');
    if (plan.stage !== 'planned') return;
    const change = plan.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!;
    expect(change).toMatchObject({ action: 'update', reason: '1 line(s) to add, 1 to remove' });
    const diff = change.fields.find((f) => f.field === '/rules')!.diff!;
    expect(diff).toMatch(/^\+ {2}ip saddr 192\.0\.2\.0\/24 tcp dport 8080 accept comment "FirewallRules\/web"$/m);
    expect(diff).toMatch(/^- {2}tcp dport 8082 accept$/m);

    expect(appliedOk(await reconcileFw(m.host, repoDir)).status).toBe('applied');
    expect(await fromProbe(m, 'http://192.0.2.1:8080/')).toBe('200');
    expect(await fromProbe(m, 'http://192.0.2.1:8082/')).toBe('000');
    const again = await reconcileFw(m.host, repoDir, { dryRun: true });
    if (again.stage === 'planned') expect(again.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!.action).toBe('noop');
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });

  it('a table nft -c rejects is never loaded: the live table is unchanged and nft says why', async () => {
    const m = machine();
    const before = (await m.exec('nft', ['-j', 'list', 'table', 'inet', 'hostkit'])).stdout;
    const host = new RecordingHost(m.host);
    // The typed path cannot produce such a rule (render refuses it), so it is injected after rendering.
    const driver = createNftablesDriver({ rewriteTransaction: (t) => t.replace('tcp dport 8083', 'tcp dport 99999') });
    const result = applied(await reconcileFw(host, await firewallRepo({ extra: { 'firewall/extra.yaml': EXTRA } }), { driver }));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('firewall/hostkit');
    expect(result.failed.error).toContain('nft rejected the rendered table; nothing was changed');
    expect(result.failed.error).toMatch(/\/dev\/stdin:\d+:\d+-\d+: Error: Service out of range\n.*tcp dport 99999/);
    expect(host.transactions()).toBe(0);
    expect((await m.exec('nft', ['-j', 'list', 'table', 'inet', 'hostkit'])).stdout).toBe(before);
    expect(await timer(m)).not.toBe('active');
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });

  it('a failed confirm check: the run rolls back and the previous table is back at once, the revert disarmed', async () => {
    const m = machine();
    const before = await table(m);
    const failing: ConfirmCheck = async () => ['forced by the test'];
    const result = applied(
      await reconcileFw(m.host, await firewallRepo({ extra: { 'firewall/extra.yaml': EXTRA } }), { driver: createNftablesDriver({ confirm: failing }) }),
    );
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.error).toMatch(/failed its confirm check: forced by the test/);
    expect(result.rollbackErrors).toEqual([]);
    expect(await table(m)).toBe(before);
    expect(await timer(m)).not.toBe('active');
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });

  it('a rule set that cuts the agent off: nothing can roll back, and the timed revert restores the previous table in time', async () => {
    const m = machine();
    const before = await table(m);
    const host = new RecordingHost(m.host);
    const cutOff: ConfirmCheck = async () => {
      host.cut = true; // from here on the host does not answer, as if the new rules had cut the agent off
      return ['the agent lost the host'];
    };
    const repoDir = await firewallRepo({ confirmTimeout: '3s', extra: { 'firewall/extra.yaml': EXTRA } });
    const result = applied(await reconcileFw(host, repoDir, { driver: createNftablesDriver({ confirm: cutOff }) }));
    const loadedAt = Date.now();
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    // The restore could not even read the host: its error names the run, whose journal the next start restores from.
    expect(result.rollbackErrors).toEqual([expect.objectContaining({ id: result.run, error: expect.stringMatching(/unreachable/) })]);
    // The new table is live (nobody could restore it) and the revert is armed...
    expect(await table(m)).toContain('tcp dport 8083 accept comment "FirewallRules/extra"');
    expect(await timer(m)).toBe('active');
    // ...and fires within the configured 3 s (counted from when it was armed, before loadedAt), give or take a poll.
    expect(await eventually(async () => (await table(m)) === before, 4_500, 100)).toBe(true);
    expect(Date.now() - loadedAt).toBeLessThan(3_500);
    expect(await eventually(async () => (await timer(m)) !== 'active', 2_000)).toBe(true);
    expect(await foreignJson(m)).toEqual(foreignBefore);
    // The next run sees nothing to do: the table is the confirmed one again.
    const plan = await reconcileFw(m.host, await firewallRepo(), { dryRun: true });
    if (plan.stage === 'planned') expect(plan.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!.action).toBe('noop');
  });

  it('the agent killed between loading the table and confirming it: the timed revert restores the previous table', async () => {
    const m = machine();
    const before = await table(m);
    const dist = path.resolve('dist/reconciler');
    // The built reconciler in a child process whose confirm check never returns, so it can be killed right there.
    const script = `
      import { reconcileHost } from '${dist}/engine.js';
      import { drivers } from '${dist}/drivers/registry.js';
      import { createNftablesDriver } from '${dist}/drivers/nftables/index.js';
      import { NspawnHost } from '${dist}/hosts/nspawn.js';
      import { silentLogger } from '${dist}/core/log.js';
      const [repoDir, leaderPid, machine] = process.argv.slice(1);
      const confirm = async () => {
        console.log('loaded, confirming');
        setInterval(() => undefined, 1000);
        return new Promise(() => undefined);
      };
      const all = new Map([...drivers, ['firewall', createNftablesDriver({ confirm })]]);
      const host = new NspawnHost({ leaderPid: Number(leaderPid), machine });
      await reconcileHost({ repoDir, hostName: '${HOST_NAME}', host, dryRun: false, log: silentLogger(), env: {}, drivers: all });
    `;
    const repoDir = await firewallRepo({ confirmTimeout: '3s', extra: { 'firewall/extra.yaml': EXTRA } });
    const child = execa(process.execPath, ['--input-type=module', '-e', script, repoDir, String(m.leaderPid), m.machine], { reject: false });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('loaded, confirming')) resolve();
      });
      void child.then((r) => reject(new Error(`the child ended before confirming: ${r.stdout} ${r.stderr}`)));
    });
    child.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await child).signal).toBe('SIGKILL');
    expect(await table(m)).toContain('tcp dport 8083 accept comment "FirewallRules/extra"');
    expect(await timer(m)).toBe('active');
    expect(await eventually(async () => (await table(m)) === before, 4_500, 100)).toBe(true);
    expect(Date.now() - killedAt).toBeLessThan(3_500);
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });

  it('a later step of the run fails: the firewall change is rolled back with the rest, in one transaction', async () => {
    const m = machine();
    const before = (await m.exec('nft', ['-j', 'list', 'table', 'inet', 'hostkit'])).stdout;
    // A service that exits at once: its unit fails after the firewall was applied, and the whole run rolls back.
    const broken = service('broken', 9300).replace(/command: \[.*\]/, 'command: [/usr/bin/python3, -c, "raise SystemExit(3)"]');
    const host = new RecordingHost(m.host);
    const result = applied(
      await reconcileFw(
        host,
        await firewallRepo({ extra: { 'firewall/extra.yaml': EXTRA, 'projects/broken.yaml': `${broken}  firewall:\n    - { port: 9300 }\n` } }),
      ),
    );
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('unit/hk-broken.service');
    expect(result.rollbackErrors).toEqual([]);
    expect(host.transactions()).toBe(2); // the change, then the restore
    const live = (await m.exec('nft', ['-j', 'list', 'table', 'inet', 'hostkit'])).stdout;
    expect(live.replace(/"handle": \d+/g, '')).toBe(before.replace(/"handle": \d+/g, ''));
    expect(await timer(m)).not.toBe('active');
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });

  it('a firewall removed from the repository: the table is deleted, other tables stay', async () => {
    const m = machine();
    const repoDir = await writeRepo({
      'hosts/test-host.yaml': `apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: ${HOST_NAME}\nspec:\n  stateDirectory: /var/lib/hostkit\n`,
    });
    const outcome = await reconcileFw(m.host, repoDir);
    expect(appliedOk(outcome).status).toBe('applied');
    if (outcome.stage === 'applied') expect(outcome.planned.plan.changes.find((c) => c.id === 'firewall/hostkit')!.action).toBe('delete');
    expect((await m.host.exec('nft', ['list', 'table', 'inet', 'hostkit'])).exitCode).not.toBe(0);
    expect(await fromProbe(m, 'http://192.0.2.1:8082/')).toBe('200');
    expect(await foreignJson(m)).toEqual(foreignBefore);
  });
});
