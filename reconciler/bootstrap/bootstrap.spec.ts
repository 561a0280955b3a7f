import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig, type AgentConfig } from '../agent/config.js';
import { FakeHost } from '../hosts/fake.js';
import { applyBootstrap } from './apply.js';
import { COPY_CHUNK_BYTES, copyToHost, inspectDeb, type DebInfo } from './deb.js';
import { checkHost, observe, type HostFacts, type Observed } from './observe.js';
import { describePlan, planBootstrap, type BootstrapInput } from './plan.js';
import { configSecretFiles, parseSecretRef, readSecretsFile, resolveSecrets, type LocalSecret } from './secrets.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostkit-bootstrap-spec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CONFIG_YAML = `repository:
  url: git@example.test:acme/config.git
  sshKeyFile: /etc/hostkit/deploy_key
host: web-1
webhook:
  listen: 127.0.0.1:9780
  secretFile: /etc/hostkit/webhook.secret
forge:
  tokenFile: /etc/hostkit/forge-token
notifications:
  channels:
    - { type: webhook, url: 'https://hooks.example.test/x', secretFile: /etc/hostkit/notify-hmac }
    - { type: slack, urlFile: /etc/hostkit/slack-url }
    - { type: email, host: smtp.example.test, from: a@example.test, to: [b@example.test], passwordFile: /etc/hostkit/smtp-password }
    - { type: email, host: smtp.example.test, from: a@example.test, to: [b@example.test] }
`;

async function config(yaml = CONFIG_YAML): Promise<AgentConfig> {
  const loaded = await parseAgentConfig('agent.yaml', Buffer.from(yaml));
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.diagnostics));
  return loaded.config;
}

/** A .deb made with dpkg-deb: `compression` of its members (control.tar's too). */
function makeDeb(name: string, fields: { Package: string; Version?: string; Architecture?: string }, compression = 'gzip'): string {
  const stage = path.join(tmp, `${name}-stage`);
  mkdirSync(path.join(stage, 'DEBIAN'), { recursive: true });
  const control = { Version: '1.2.3', Architecture: 'amd64', Maintainer: 'x <x@example.test>', Description: 'test', ...fields };
  writeFileSync(
    path.join(stage, 'DEBIAN/control'),
    Object.entries(control)
      .map(([k, v]) => `${k}: ${v}\n`)
      .join(''),
  );
  const file = path.join(tmp, `${name}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '--build', stage, file], { stdio: 'ignore' });
  return file;
}

describe('reconciler/bootstrap: secret references', () => {
  it.each([
    ['/etc/hostkit/webhook.secret=file:./webhook.secret', { path: '/etc/hostkit/webhook.secret', source: { file: path.resolve('webhook.secret') } }],
    ['/etc/hostkit/deploy_key=env:DEPLOY_KEY', { path: '/etc/hostkit/deploy_key', source: { env: 'DEPLOY_KEY' } }],
  ])('%s', (text, want) => {
    expect(parseSecretRef(text)).toMatchObject(want);
  });

  it.each([
    ['etc/x=file:a', 'no absolute remote path'],
    ['/etc/x=vault:a', 'no absolute remote path'],
    ['/etc/x', 'no absolute remote path'],
    ['/etc/../x=file:a', 'is not a normalized file path'],
    ['/etc/x/=file:a', 'is not a normalized file path'],
    ['/etc/x=env:NOT-A-NAME', 'is not an environment variable name'],
  ])('%s is refused: %s', (text, why) => {
    expect(() => parseSecretRef(text)).toThrow(expect.objectContaining({ code: 'BOOTSTRAP_SECRET_INVALID', message: expect.stringContaining(why) }));
  });

  it('a --secrets file: comments and blank lines skipped, file: paths relative to it, errors naming its line', async () => {
    const dir = path.join(tmp, 'refs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'secrets'), '# references only: safe to commit\n\n/etc/hostkit/a=file:a.txt\n/etc/hostkit/b=env:B\n');
    expect(await readSecretsFile(path.join(dir, 'secrets'))).toEqual([
      { path: '/etc/hostkit/a', source: { file: path.join(dir, 'a.txt') }, origin: `${path.join(dir, 'secrets')}:3` },
      { path: '/etc/hostkit/b', source: { env: 'B' }, origin: `${path.join(dir, 'secrets')}:4` },
    ]);
    writeFileSync(path.join(dir, 'broken'), '/etc/hostkit/a=file:a.txt\nB=hunter2\n');
    await expect(readSecretsFile(path.join(dir, 'broken'))).rejects.toThrow(`${path.join(dir, 'broken')}:2: expected REMOTE_PATH=file:LOCAL_PATH`);
  });

  it('values: a file byte for byte, a variable with a newline; never a value in an error', async () => {
    const file = path.join(tmp, 'key');
    writeFileSync(file, 'KEY-BYTES-1\n');
    const secrets = await resolveSecrets([parseSecretRef(`/etc/hostkit/k=file:${file}`), parseSecretRef('/etc/hostkit/t=env:TOKEN')], { TOKEN: 'tok-3f9' });
    expect(secrets.get('/etc/hostkit/k')).toMatchObject({ value: Buffer.from('KEY-BYTES-1\n'), from: `file ${file}` });
    expect(secrets.get('/etc/hostkit/t')).toMatchObject({ value: Buffer.from('tok-3f9\n'), from: 'env TOKEN' });

    const fail = (refs: string[], env: NodeJS.ProcessEnv = {}) =>
      resolveSecrets(
        refs.map((r) => parseSecretRef(r)),
        env,
      );
    await expect(fail(['/etc/hostkit/t=env:TOKEN'])).rejects.toThrow(
      '--secret: the secret for /etc/hostkit/t comes from the environment variable TOKEN, which is not set',
    );
    await expect(fail(['/etc/hostkit/t=env:TOKEN'], { TOKEN: '' })).rejects.toThrow('which is empty');
    await expect(fail([`/etc/hostkit/k=file:${file}.missing`])).rejects.toThrow(/which cannot be read \(ENOENT/);
    await expect(fail(['/etc/hostkit/t=env:TOKEN', '/etc/hostkit/t=env:OTHER'], { TOKEN: 'tok-3f9', OTHER: 'other-77' })).rejects.toThrow(
      expect.objectContaining({ code: 'BOOTSTRAP_SECRET_INVALID', message: '--secret: /etc/hostkit/t is given more than once' }),
    );
  });

  it('the secret files an agent configuration names: key, webhook, forge and each notification channel', async () => {
    expect(configSecretFiles(await config())).toEqual([
      { path: '/etc/hostkit/deploy_key', field: 'repository.sshKeyFile' },
      { path: '/etc/hostkit/webhook.secret', field: 'webhook.secretFile' },
      { path: '/etc/hostkit/forge-token', field: 'forge.tokenFile' },
      { path: '/etc/hostkit/notify-hmac', field: 'notifications.channels[0].secretFile' },
      { path: '/etc/hostkit/slack-url', field: 'notifications.channels[1].urlFile' },
      { path: '/etc/hostkit/smtp-password', field: 'notifications.channels[2].passwordFile' },
    ]);
    expect(configSecretFiles(await config('repository: {url: /srv/config.git}\nhost: web-1\n'))).toEqual([]);
  });
});

describe('reconciler/bootstrap: the package', () => {
  it("reads a .deb's control fields (control.tar.gz or uncompressed) and its sha256", async () => {
    for (const compression of ['gzip', 'none']) {
      const file = makeDeb(`ok-${compression}`, { Package: 'hostkit', Version: '0.2.0~rc.1', Architecture: 'arm64' }, compression);
      const sha256 = createHash('sha256')
        .update(execFileSync('cat', [file]))
        .digest('hex');
      expect(await inspectDeb(file)).toMatchObject({ file, name: 'hostkit', version: '0.2.0~rc.1', architecture: 'arm64', sha256 });
    }
  });

  it.each([
    ['another package', () => makeDeb('other', { Package: 'nginx' }), 'its Package is "nginx", not hostkit'],
    ['control.tar.xz', () => makeDeb('xz', { Package: 'hostkit' }, 'xz'), 'control.tar.xz is compressed in a way this reader does not know'],
    ['not a .deb', () => (writeFileSync(path.join(tmp, 'x.deb'), 'hello'), path.join(tmp, 'x.deb')), 'it is not a Debian package'],
    ['missing', () => path.join(tmp, 'missing.deb'), 'it cannot be read (ENOENT'],
  ])('refuses %s naming the file', async (_what, make, why) => {
    const file = make();
    await expect(inspectDeb(file)).rejects.toThrow(expect.objectContaining({ code: 'BOOTSTRAP_PACKAGE_INVALID', message: expect.stringContaining(why) }));
    await expect(inspectDeb(file)).rejects.toThrow(`${file} is not a HostKit package`);
  });

  it('copies in chunks of COPY_CHUNK_BYTES (never one message) and checks the sha256 on the host', async () => {
    const file = path.join(tmp, 'big.bin');
    const bytes = Buffer.alloc(2 * COPY_CHUNK_BYTES + 123, 7);
    writeFileSync(file, bytes);
    const local = { file, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } as DebInfo;
    const host = new FakeHost();
    host.seedDir('/var/tmp');
    const appends: number[] = [];
    const append = host.appendFile.bind(host);
    host.appendFile = async (p, data, o) => {
      appends.push(Buffer.from(data).length);
      return append(p, data, o);
    };
    host.onExec((call, h) =>
      call.file === 'sha256sum'
        ? {
            exitCode: 0,
            stdout: `${createHash('sha256')
              .update(h.text(call.args[0]!) ?? '')
              .digest('hex')}  ${call.args[0]}\n`,
            stderr: '',
          }
        : undefined,
    );
    await copyToHost(host, local, '/var/tmp/big.deb', { uid: 0, gid: 0, mode: 0o644 });
    expect(appends).toEqual([COPY_CHUNK_BYTES, COPY_CHUNK_BYTES, 123]);
    expect(Buffer.from(host.text('/var/tmp/big.deb')!, 'utf8').length).toBe(bytes.length);

    await expect(copyToHost(host, { ...local, sha256: 'f'.repeat(64) }, '/var/tmp/big.deb', { uid: 0, gid: 0, mode: 0o644 })).rejects.toThrow(
      expect.objectContaining({ code: 'BOOTSTRAP_INSTALL_FAILED', retryable: true }),
    );
  });
});

const DEB: DebInfo = { file: '/x/hostkit_0.1.0_amd64.deb', bytes: 52e6, sha256: 'a'.repeat(64), name: 'hostkit', version: '0.1.0', architecture: 'amd64' };
const FACTS: HostFacts = { os: 'Debian GNU/Linux 12 (bookworm)', arch: 'amd64', user: 'root' };
const ROOT_0600 = { type: 'file' as const, uid: 0, gid: 0, mode: 0o600, size: 1 };

function secret(p: string, value: string): LocalSecret {
  return { path: p, value: Buffer.from(value), from: 'env HK_SECRET' };
}

async function input(secrets: LocalSecret[] = [secret('/etc/hostkit/webhook.secret', 'w\n')]): Promise<BootstrapInput> {
  const yaml = 'repository: {url: /srv/config.git}\nhost: web-1\nwebhook: {listen: "127.0.0.1:9780", secretFile: /etc/hostkit/webhook.secret}\n';
  const parsed = await config(yaml);
  return {
    config: { file: 'agent.yaml', bytes: Buffer.from(yaml), parsed },
    deb: DEB,
    secrets: new Map(secrets.map((s) => [s.path, s])),
    named: configSecretFiles(parsed),
  };
}

/** A host bootstrapped by `input()` already, with `change` applied. */
async function observed(change: (o: Observed) => void = () => undefined): Promise<Observed> {
  const i = await input();
  const o: Observed = {
    installed: '0.1.0',
    record: { package: { name: 'hostkit', version: '0.1.0', architecture: 'amd64', sha256: DEB.sha256 }, installedAt: '2026-01-01T00:00:00Z' },
    config: { stat: ROOT_0600, bytes: i.config.bytes },
    secrets: new Map([['/etc/hostkit/webhook.secret', { stat: ROOT_0600, bytes: Buffer.from('w\n') }]]),
    unit: { loaded: true, enabled: true, activeState: 'active', invocation: 'abc', restarts: 0 },
  };
  change(o);
  return o;
}

const input0 = await input();
const observed0 = await observed();

describe('reconciler/bootstrap: the plan', () => {
  it.each<[string, (o: Observed) => void, { install: boolean; config: boolean; secret: boolean; enable: boolean; start: boolean; restart: boolean }]>([
    ['all in place', () => undefined, { install: false, config: false, secret: false, enable: false, start: false, restart: false }],
    [
      'a fresh host',
      (o) => {
        delete o.installed;
        delete o.record;
        delete o.config;
        o.secrets.set('/etc/hostkit/webhook.secret', undefined);
        o.unit = { loaded: false, enabled: false, activeState: 'inactive', invocation: '', restarts: 0 };
      },
      { install: true, config: true, secret: true, enable: true, start: true, restart: false },
    ],
    [
      'other bytes of the same version',
      (o) => (o.record!.package.sha256 = 'b'.repeat(64)),
      { install: true, config: false, secret: false, enable: false, start: false, restart: true },
    ],
    ['the package removed by hand', (o) => delete o.installed, { install: true, config: false, secret: false, enable: false, start: false, restart: true }],
    ['no record (installed by hand)', (o) => delete o.record, { install: true, config: false, secret: false, enable: false, start: false, restart: true }],
    [
      'the configuration 0644',
      (o) => (o.config!.stat = { ...ROOT_0600, mode: 0o644 }),
      { install: false, config: true, secret: false, enable: false, start: false, restart: true },
    ],
    [
      'another secret value',
      (o) => o.secrets.set('/etc/hostkit/webhook.secret', { stat: ROOT_0600, bytes: Buffer.from('old\n') }),
      { install: false, config: false, secret: true, enable: false, start: false, restart: true },
    ],
    [
      'the agent stopped',
      (o) => (o.unit.activeState = 'inactive'),
      { install: false, config: false, secret: false, enable: false, start: true, restart: false },
    ],
    [
      'the agent failed and disabled',
      (o) => (o.unit = { ...o.unit, activeState: 'failed', enabled: false }),
      { install: false, config: false, secret: false, enable: true, start: true, restart: false },
    ],
  ])('%s', async (_name, change, want) => {
    const plan = planBootstrap(await input(), FACTS, await observed(change));
    expect({
      install: plan.package.install,
      config: plan.config.write,
      secret: plan.secrets[0]!.write,
      enable: plan.agent.enable,
      start: plan.agent.start,
      restart: plan.agent.restart,
    }).toEqual(want);
  });

  it('a secret the configuration names and nobody gives: kept when on the host, refused before any change when not', async () => {
    const none = await input([]);
    const kept = planBootstrap(none, FACTS, await observed());
    expect(kept.secrets).toEqual([{ path: '/etc/hostkit/webhook.secret', write: false }]);
    expect(describePlan(kept)[2]).toBe('secrets: unchanged (/etc/hostkit/webhook.secret (kept: on the host, no --secret))');
    const gone = await observed((o) => o.secrets.set('/etc/hostkit/webhook.secret', undefined));
    expect(() => planBootstrap(none, FACTS, gone)).toThrow(
      expect.objectContaining({
        code: 'BOOTSTRAP_SECRET_MISSING',
        message: expect.stringContaining(
          'agent.yaml names secret files that are not on the host and that no --secret gives: /etc/hostkit/webhook.secret (webhook.secretFile). Nothing was changed',
        ),
      }),
    );
  });

  it('a package for another architecture, or a --secret for agent.yaml itself, is refused', async () => {
    expect(() => planBootstrap({ ...input0, deb: { ...DEB, architecture: 'arm64' } }, FACTS, observed0)).toThrow(
      expect.objectContaining({
        code: 'BOOTSTRAP_PACKAGE_INVALID',
        message: '/x/hostkit_0.1.0_amd64.deb is built for arm64, and the host is amd64. Nothing was changed',
      }),
    );
    const config = await input([secret('/etc/hostkit/agent.yaml', 'x')]);
    expect(() => planBootstrap(config, FACTS, observed0)).toThrow(expect.objectContaining({ code: 'BOOTSTRAP_SECRET_INVALID' }));
  });

  it('--dry-run: one line per step, saying what it would do; never a secret value', async () => {
    const fresh = await observed((o) => {
      o.installed = '0.0.9';
      o.config!.bytes = Buffer.from('old');
      o.secrets.set('/etc/hostkit/webhook.secret', undefined);
      o.unit = { loaded: true, enabled: false, activeState: 'inactive', invocation: '', restarts: 0 };
    });
    expect(describePlan(planBootstrap(input0, FACTS, fresh))).toEqual([
      'package: would copy /x/hostkit_0.1.0_amd64.deb (52.0 MB) and install hostkit 0.1.0 (sha256 aaaaaaaaaaaa) over the installed 0.0.9',
      'config: would write /etc/hostkit/agent.yaml (root, 0600)',
      'secrets: would write /etc/hostkit/webhook.secret (env HK_SECRET)',
      'agent: would enable and start hostkit-agent.service, then wait for its first run',
    ]);
    expect(describePlan(planBootstrap(input0, FACTS, observed0))).toEqual([
      'package: unchanged (hostkit 0.1.0 (sha256 aaaaaaaaaaaa))',
      'config: unchanged (/etc/hostkit/agent.yaml)',
      'secrets: unchanged (/etc/hostkit/webhook.secret)',
      'agent: unchanged (hostkit-agent.service active)',
    ]);
  });
});

// A Debian host as far as bootstrap asks: os-release, dpkg, apt-get, systemctl and the agent's journal.
function debianHost(state: { installed?: string; arch?: string; uid?: string; os?: string; firstRun?: string }): FakeHost {
  const host = new FakeHost({ '/etc/os-release': state.os ?? 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n' });
  host.seedDir('/run/systemd/system');
  host.seedDir('/var/tmp');
  const unit = { enabled: false, active: false, invocation: '', n: 0 };
  host.onExec((call, h) => {
    const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' });
    const [a0] = call.args;
    if (call.file === 'dpkg' && a0 === '--print-architecture') return ok(`${state.arch ?? 'amd64'}\n`);
    if (call.file === 'id') return ok(a0 === '-u' ? `${state.uid ?? '0'}\n` : `${state.uid && state.uid !== '0' ? 'deploy' : 'root'}\n`);
    if (call.file === 'dpkg-query' && call.args.includes('hostkit'))
      return state.installed ? ok(`ii \t${state.installed}`) : { exitCode: 1, stdout: '', stderr: 'no packages found' };
    if (call.file === 'sha256sum')
      return ok(
        `${createHash('sha256')
          .update(h.text(a0!) ?? '')
          .digest('hex')}  ${a0}\n`,
      );
    if (call.file === 'apt-get' && call.args.includes('install')) {
      state.installed = DEB.version;
      return ok();
    }
    if (call.file === 'systemctl' && a0 === 'show') {
      return ok(
        `LoadState=${state.installed ? 'loaded' : 'not-found'}\nUnitFileState=${unit.enabled ? 'enabled' : 'disabled'}\nActiveState=${unit.active ? 'active' : 'inactive'}\nInvocationID=${unit.invocation}\nNRestarts=0\n`,
      );
    }
    if (call.file === 'systemctl' && a0 === 'enable') unit.enabled = true;
    if (call.file === 'systemctl' && (a0 === 'start' || a0 === 'restart')) Object.assign(unit, { active: true, invocation: `inv${++unit.n}` });
    if (call.file === 'journalctl' && a0 === `_SYSTEMD_INVOCATION_ID=${unit.invocation}`) {
      return ok(`${state.firstRun ?? JSON.stringify({ msg: 'reconciled', commit: '1234567890', result: 'applied', changes: 2 })}\n`);
    }
    return undefined;
  });
  return host;
}

describe('reconciler/bootstrap: on a (fake) host', () => {
  it('step 1 names every problem at once and changes nothing', async () => {
    const host = debianHost({ os: 'ID=fedora\n', arch: 'riscv64', uid: '1000' });
    await host.remove('/run/systemd/system');
    const error = await checkHost(host).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BOOTSTRAP_HOST_UNSUPPORTED' });
    expect((error as Error).message).toBe(
      'fake cannot be bootstrapped: it is not Debian or Ubuntu (/etc/os-release: ID=fedora); HostKit ships as a .deb; ' +
        'its architecture is riscv64; HostKit ships for amd64 and arm64; ' +
        'HostKit runs as deploy (uid 1000) there, not root: log in as root, or as a user that may run sudo without a password (--sudo); ' +
        'systemd is not running as init (no /run/systemd/system); the agent runs as a systemd service. Nothing was changed',
    );
    expect(host.writes).toEqual(['/run/systemd/system']);
    expect(await checkHost(debianHost({ os: 'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\n' }))).toEqual({
      os: 'Ubuntu 24.04 LTS',
      arch: 'amd64',
      user: 'root',
    });
  });

  it('a fresh host: copy, apt-get install, record, configuration and secrets 0600, enable, start, first run; then every step unchanged', async () => {
    const file = path.join(tmp, 'hostkit.deb');
    writeFileSync(file, Buffer.alloc(COPY_CHUNK_BYTES + 1, 1));
    const deb = {
      ...DEB,
      file,
      bytes: COPY_CHUNK_BYTES + 1,
      sha256: createHash('sha256')
        .update(Buffer.alloc(COPY_CHUNK_BYTES + 1, 1))
        .digest('hex'),
    };
    const host = debianHost({});
    host.seedDir('/etc/hostkit');
    const i = { ...input0, deb };
    const run = async () => {
      const lines: string[] = [];
      const facts = await checkHost(host);
      const o = await observe(host, { stateDirectory: '/var/lib/hostkit', given: [...i.secrets.keys()], named: i.named.map((n) => n.path) });
      await applyBootstrap(host, i, planBootstrap(i, facts, o), { agentTimeoutMs: 5_000, scrub: (t) => t, line: (l) => lines.push(l), warn: () => undefined });
      return lines;
    };
    const first = await run();
    expect(first).toEqual([
      expect.stringMatching(/^package: installed hostkit 0\.1\.0 \(sha256 [0-9a-f]{12}\); 1\.0 MB copied in [\d.]+ s, installed in [\d.]+ s$/),
      'config: wrote /etc/hostkit/agent.yaml (root, 0600)',
      'secrets: wrote /etc/hostkit/webhook.secret (env HK_SECRET)',
      'agent: enabled and started hostkit-agent.service (invocation inv1); first run: applied 1234567 (2 changes)',
    ]);
    const commands = host.calls.map((c) => [c.file, ...c.args].join(' '));
    const remote = commands.find((c) => c.startsWith('sha256sum '))!.split(' ')[1]!;
    expect(remote).toMatch(/^\/var\/tmp\/hostkit-bootstrap-[0-9a-f]{16}\/hostkit\.deb$/);
    expect(commands.filter((c) => /^(apt-get|systemctl (enable|start|restart))/.test(c))).toEqual([
      'apt-get -o DPkg::Lock::Timeout=300 update',
      `apt-get -o DPkg::Lock::Timeout=300 install -y --allow-downgrades ${remote}`,
      'systemctl enable hostkit-agent.service',
      'systemctl start hostkit-agent.service',
    ]);
    expect(host.paths().filter((p) => p.startsWith('/var/tmp/'))).toEqual([]);
    expect(JSON.parse(host.text('/var/lib/hostkit/bootstrap.json')!)).toMatchObject({ package: { version: '0.1.0', sha256: deb.sha256 } });
    for (const p of ['/etc/hostkit/agent.yaml', '/etc/hostkit/webhook.secret']) expect(await host.stat(p)).toMatchObject({ uid: 0, gid: 0, mode: 0o600 });
    expect(host.text('/etc/hostkit/webhook.secret')).toBe('w\n');

    host.calls.length = 0;
    expect(await run()).toEqual([
      `package: unchanged (hostkit 0.1.0 (sha256 ${deb.sha256.slice(0, 12)}))`,
      'config: unchanged (/etc/hostkit/agent.yaml)',
      'secrets: unchanged (/etc/hostkit/webhook.secret)',
      'agent: unchanged (hostkit-agent.service active, invocation inv1)',
    ]);
    expect(host.calls.filter((c) => ['apt-get', 'sha256sum'].includes(c.file) || (c.file === 'systemctl' && c.args[0] !== 'show'))).toEqual([]);
  });

  it('the agent not getting through its first run: BOOTSTRAP_AGENT_FAILED with the journal, scrubbed', async () => {
    const host = debianHost({ installed: '0.1.0', firstRun: JSON.stringify({ msg: 'fetch failed', err: 'git ls-remote: Permission denied (key w-secret)' }) });
    host.onExec((call) =>
      call.file === 'journalctl' && call.args[0] === '-u' ? { exitCode: 0, stdout: 'fetch failed: key w-secret', stderr: '' } : undefined,
    );
    const i = await input();
    const plan = planBootstrap(
      i,
      FACTS,
      await observed((o) => (o.unit = { loaded: true, enabled: true, activeState: 'inactive', invocation: '', restarts: 0 })),
    );
    const error = await applyBootstrap(host, i, plan, {
      agentTimeoutMs: 5_000,
      scrub: (t) => t.replaceAll('w-secret', '(redacted)'),
      line: () => undefined,
      warn: () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BOOTSTRAP_AGENT_FAILED' });
    expect((error as Error).message).toBe(
      'hostkit-agent.service on fake could not run: fetch failed: git ls-remote: Permission denied (key (redacted)). Its last journal lines:\nfetch failed: key (redacted)',
    );
  });
});
