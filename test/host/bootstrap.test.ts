// `hostkit bootstrap` (the CLI process, as an operator runs it) against a
// fresh bare test host reached over SSH: no Node and no HostKit inside, its
// apt sources a local repository (as a VPS has its distribution's mirror),
// and the config repository a bare git repository on this machine
// bind-mounted into the host. One run takes the host to an agent that applied
// the repository's File and reported on the report branch; a second run
// changes nothing (the agent's InvocationID unchanged); a secret the
// configuration names and nobody gave is refused before anything changes.
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { releaseFiles } from '../../scripts/package/build.js';
import { gitRemote, type GitRemote } from '../support/git-remote.js';
import { manifestYaml } from '../support/manifests.js';
import { describeHost, serveAptRepo, useHost, type TestHost } from './harness.js';
import { eventually, HOST_NAME } from './reconcile.js';
import { cachedRelease, RELEASE_VERSION } from './release.js';
import { sshInto, type SshAccess } from './ssh.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/reconciler/cli.js');
// The bind source has to exist when the host boots (useHost runs before any test).
const REMOTE_ROOT = mkdtempSync(path.join(os.tmpdir(), 'hostkit-bootstrap-remote-'));
const INSIDE = '/srv/hostkit-remote';
const WEBHOOK_SECRET = 'whsec-bootstrap-5d8e1f27c4';
const DEPLOY_KEY = 'deploy-key-bootstrap-91ab7e3c';
const NEW_WEBHOOK_SECRET = 'whsec-bootstrap-rotated-0e6a93';
const WEBHOOK_FILE = '/etc/hostkit/secrets/webhook';
const KEY_FILE = '/etc/hostkit/secrets/deploy_key';
const MOTD = '/srv/hostkit-bootstrap.txt';

const MANIFESTS = {
  'hosts/test-host.yaml': manifestYaml({ kind: 'Host', name: HOST_NAME, spec: { stateDirectory: '/var/lib/hostkit' } }),
  'hosts/motd.yaml': manifestYaml({
    kind: 'File',
    name: 'motd',
    on: [HOST_NAME],
    spec: { path: MOTD, owner: 'root', group: 'root', mode: '0644', content: 'bootstrapped by HostKit\n' },
  }),
};

function agentYaml(url: string): string {
  return `repository:
  url: ${url}
  branch: main
  sshKeyFile: ${KEY_FILE}
host: ${HOST_NAME}
pollInterval: 1h
webhook:
  listen: 127.0.0.1:9780
  secretFile: ${WEBHOOK_FILE}
report:
  branch: hostkit-status
drift:
  interval: 1h
`;
}

async function unit(m: TestHost, property: string): Promise<string> {
  return (await m.host.exec('systemctl', ['show', '--value', `--property=${property}`, 'hostkit-agent.service'])).stdout.trim();
}

describeHost('hostkit bootstrap: a bare host over SSH to a running agent', () => {
  const machine = useHost({ variant: 'bare', aptRepo: true, bind: [{ hostPath: REMOTE_ROOT, containerPath: INSIDE }] });
  let ssh: SshAccess;
  let remote: GitRemote;
  let commit: string;
  let deb: string;
  let local: string;
  let secretFile: string;
  let configFile: string;

  beforeAll(async () => {
    const m = machine();
    deb = path.join(await cachedRelease(), releaseFiles(RELEASE_VERSION, 'x64').deb);
    remote = await gitRemote(REMOTE_ROOT);
    commit = await remote.push(MANIFESTS, 'motd');
    ssh = await sshInto(m);
    // The host's apt sources: the local repository only (it has no network), as a VPS has its mirror.
    const served = await serveAptRepo(m);
    await m.host.mkdir('/etc/apt/keyrings', { uid: 0, gid: 0, mode: 0o755 });
    await m.host.writeFile('/etc/apt/keyrings/hostkit-test.asc', served.armoredKey, { uid: 0, gid: 0, mode: 0o644 });
    const source = `Types: deb\nURIs: ${served.uri}\nSuites: ${served.suite}\nComponents: ${served.component}\nSigned-By: /etc/apt/keyrings/hostkit-test.asc\n`;
    await m.host.writeFile('/etc/apt/sources.list.d/hostkit-test.sources', source, { uid: 0, gid: 0, mode: 0o644 });
    local = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bootstrap-local-'));
    secretFile = path.join(local, 'webhook.secret');
    configFile = path.join(local, 'agent.yaml');
    await writeFile(secretFile, `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
    await writeFile(configFile, agentYaml(`${INSIDE}/${path.basename(path.dirname(remote.bare))}/config.git`));
  }, 300_000);
  afterAll(async () => {
    await ssh?.dispose();
    await remote?.cleanup();
    rmSync(REMOTE_ROOT, { recursive: true, force: true });
    if (local) rmSync(local, { recursive: true, force: true });
  });

  const bootstrap = (extra: string[], secrets = [`${WEBHOOK_FILE}=file:${secretFile}`, `${KEY_FILE}=env:HK_DEPLOY_KEY`]) =>
    execa(
      process.execPath,
      [
        CLI,
        'bootstrap',
        `ssh://root@${HOST_NAME}`,
        '--ssh-config',
        ssh.configFile,
        '--config',
        configFile,
        '--package',
        deb,
        ...secrets.flatMap((s) => ['--secret', s]),
        ...extra,
      ],
      { reject: false, env: { HK_DEPLOY_KEY: DEPLOY_KEY }, timeout: 540_000 },
    );
  const noSecretIn = (text: string) => {
    for (const secret of [WEBHOOK_SECRET, NEW_WEBHOOK_SECRET, DEPLOY_KEY]) expect(text).not.toContain(secret);
  };
  /** The HTTP status the agent's webhook answers a push signed with `secret`. */
  const signedPush = async (m: TestHost, secret: string) => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: commit, repository: { full_name: 'acme/config' } });
    await m.host.writeFile('/tmp/push.json', body, { uid: 0, gid: 0, mode: 0o600 });
    const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const curl = await m.host.exec('curl', [
      ...['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', 'Content-Type: application/json'],
      ...['-H', 'X-GitHub-Event: push', '-H', `X-GitHub-Delivery: ${randomUUID()}`, '-H', `X-Hub-Signature-256: ${signature}`],
      ...['--data-binary', '@/tmp/push.json', 'http://127.0.0.1:9780/webhook'],
    ]);
    return curl.stdout;
  };
  // What a bootstrap may leave: HostKit's package, its configuration, its state, the copied .deb.
  const touched = async (m: TestHost) =>
    (
      await m.host.exec('sh', [
        '-c',
        "dpkg-query -W -f='${db:Status-Abbrev}' hostkit 2>/dev/null; ls -d /etc/hostkit /var/lib/hostkit /var/tmp/hostkit-bootstrap-* 2>/dev/null; md5sum /var/lib/dpkg/status",
      ])
    ).stdout;

  it('a secret the configuration names and no --secret gives is refused before anything changes', async () => {
    const m = machine();
    const before = await touched(m);
    expect(before).not.toMatch(/^ii/);
    const refused = await bootstrap([], [`${WEBHOOK_FILE}=file:${secretFile}`]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(
        `^hostkit: error: .*agent\\.yaml names secret files that are not on the host and that no --secret gives: ${KEY_FILE} \\(repository\\.sshKeyFile\\)\\. Nothing was changed\\..*\\[BOOTSTRAP_SECRET_MISSING\\]$`,
        'm',
      ),
    );
    expect(refused.stdout).toMatch(/^host: checked ssh:\/\/root@test-host: Debian GNU\/Linux 12 \(bookworm\), amd64, HostKit runs as root$/m);
    expect(refused.stdout).not.toMatch(/^(package|config|secrets|agent):/m);
    noSecretIn(refused.stdout + refused.stderr);
    expect(await touched(m)).toBe(before);
  });

  it('--dry-run says what each step would do and changes nothing', async () => {
    const m = machine();
    const before = await touched(m);
    const dry = await bootstrap(['--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    const lines = dry.stdout.trim().split('\n');
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^package: would copy .*\\.deb \\(\\d+\\.\\d MB\\) and install hostkit ${RELEASE_VERSION} \\(sha256 [0-9a-f]{12}\\) where none is installed$`,
        ),
      ),
      'config: would write /etc/hostkit/agent.yaml (root, 0600)',
      expect.stringMatching(new RegExp(`^secrets: would write ${WEBHOOK_FILE} \\(file .*webhook\\.secret\\), ${KEY_FILE} \\(env HK_DEPLOY_KEY\\)$`)),
      'agent: would enable and start hostkit-agent.service, then wait for its first run',
    ]);
    noSecretIn(dry.stdout + dry.stderr);
    expect(await touched(m)).toBe(before);
  });

  it(
    'bootstrap installs the package, writes the configuration and secrets, and starts the agent, which applies the File and reports',
    { timeout: 600_000 },
    async () => {
      const m = machine();
      expect((await m.host.exec('sh', ['-c', 'command -v node || command -v git'])).exitCode).not.toBe(0);
      const started = Date.now();
      const run = await bootstrap([]);
      process.stderr.write(`[host] bootstrap: first run ${((Date.now() - started) / 1000).toFixed(1)} s\n${run.stdout}`);
      expect(run.exitCode, run.stderr).toBe(0);
      noSecretIn(run.stdout + run.stderr);
      const lines = run.stdout.trim().split('\n');
      expect(lines).toEqual([
        'host: checked ssh://root@test-host: Debian GNU/Linux 12 (bookworm), amd64, HostKit runs as root',
        expect.stringMatching(
          new RegExp(`^package: installed hostkit ${RELEASE_VERSION} \\(sha256 [0-9a-f]{12}\\); [\\d.]+ MB copied in [\\d.]+ s, installed in [\\d.]+ s$`),
        ),
        'config: wrote /etc/hostkit/agent.yaml (root, 0600)',
        expect.stringMatching(new RegExp(`^secrets: wrote ${WEBHOOK_FILE} \\(file .*\\), ${KEY_FILE} \\(env HK_DEPLOY_KEY\\)$`)),
        expect.stringMatching(
          new RegExp(
            `^agent: enabled and started hostkit-agent\\.service \\(invocation [0-9a-f]{12}\\); first run: applied ${commit.slice(0, 7)} \\(1 change\\)$`,
          ),
        ),
      ]);
      // The package and its dependency git came from apt; the copied .deb is gone.
      const status = (name: string) => m.exec('dpkg-query', ['-W', '-f=${db:Status-Abbrev}${Version}', name]).then((r) => r.stdout);
      expect(await status('hostkit')).toBe(`ii ${RELEASE_VERSION}`);
      expect(await status('git')).toMatch(/^ii /);
      expect((await m.host.exec('sh', ['-c', 'ls -d /var/tmp/hostkit-bootstrap-*'])).exitCode).not.toBe(0);
      // The configuration and secrets byte for byte, root's and 0600.
      for (const [file, content] of [
        ['/etc/hostkit/agent.yaml', agentYaml(`${INSIDE}/${path.basename(path.dirname(remote.bare))}/config.git`)],
        [WEBHOOK_FILE, `${WEBHOOK_SECRET}\n`],
        [KEY_FILE, `${DEPLOY_KEY}\n`],
      ] as const) {
        expect((await m.host.readFile(file))?.toString(), file).toBe(content);
        expect(await m.host.stat(file), file).toMatchObject({ uid: 0, gid: 0, mode: 0o600 });
      }
      // The agent runs, applied the File, and reported the commit on the report branch.
      expect(await unit(m, 'ActiveState')).toBe('active');
      expect(await unit(m, 'UnitFileState')).toBe('enabled');
      expect((await m.host.readFile(MOTD))?.toString()).toBe('bootstrapped by HostKit\n');
      const report = async () => JSON.parse((await remote.show('hostkit-status', `status/${HOST_NAME}.json`)) ?? '{}') as { commit?: string; result?: string };
      expect(await eventually(async () => (await report()).commit === commit, 60_000, 250)).toBe(true);
      expect(await report()).toMatchObject({ commit, result: 'applied' });
      // The webhook secret the agent reads is the one given: a push signed with it is accepted, another refused.
      expect(await signedPush(m, 'not-the-secret')).toBe('401');
      expect(await signedPush(m, WEBHOOK_SECRET)).toBe('202');
    },
  );

  it('a second run changes nothing: every step unchanged, the agent not restarted (same InvocationID)', { timeout: 300_000 }, async () => {
    const m = machine();
    const invocation = await unit(m, 'InvocationID');
    const record = (await m.host.readFile('/var/lib/hostkit/bootstrap.json'))?.toString();
    const started = Date.now();
    const again = await bootstrap([]);
    process.stderr.write(`[host] bootstrap: second run ${((Date.now() - started) / 1000).toFixed(1)} s\n${again.stdout}`);
    expect(again.exitCode, again.stderr).toBe(0);
    const lines = again.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^host: checked /);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^package: unchanged \\(hostkit ${RELEASE_VERSION} \\(sha256 [0-9a-f]{12}\\)\\)$`)),
      'config: unchanged (/etc/hostkit/agent.yaml)',
      `secrets: unchanged (${WEBHOOK_FILE}, ${KEY_FILE})`,
      `agent: unchanged (hostkit-agent.service active, invocation ${invocation.slice(0, 12)})`,
    ]);
    expect(await unit(m, 'InvocationID')).toBe(invocation);
    expect(await unit(m, 'NRestarts')).toBe('0');
    expect((await m.host.readFile('/var/lib/hostkit/bootstrap.json'))?.toString()).toBe(record);
  });

  it('a rotated secret is written and the agent restarted to read it (a new InvocationID); the other steps unchanged', { timeout: 300_000 }, async () => {
    const m = machine();
    const invocation = await unit(m, 'InvocationID');
    await writeFile(secretFile, `${NEW_WEBHOOK_SECRET}\n`);
    const run = await bootstrap([]);
    process.stderr.write(`[host] bootstrap: rotated secret\n${run.stdout}\n`);
    expect(run.exitCode, run.stderr).toBe(0);
    noSecretIn(run.stdout + run.stderr);
    const now = await unit(m, 'InvocationID');
    expect(now).not.toBe(invocation);
    expect(run.stdout.trim().split('\n').slice(1)).toEqual([
      expect.stringMatching(/^package: unchanged /),
      'config: unchanged (/etc/hostkit/agent.yaml)',
      expect.stringMatching(new RegExp(`^secrets: wrote ${WEBHOOK_FILE} \\(file .*webhook\\.secret\\); unchanged ${KEY_FILE}$`)),
      `agent: restarted hostkit-agent.service (invocation ${now.slice(0, 12)}); first run: converged at start-up on ${commit.slice(0, 7)} (no-changes)`,
    ]);
    expect(await signedPush(m, WEBHOOK_SECRET)).toBe('401');
    expect(await signedPush(m, NEW_WEBHOOK_SECRET)).toBe('202');
  });

  it("an agent that cannot fetch its repository: exit 1, BOOTSTRAP_AGENT_FAILED and the unit's last journal lines", { timeout: 300_000 }, async () => {
    const broken = path.join(local, 'broken.yaml');
    await writeFile(broken, `${agentYaml(`${INSIDE}/no-such-repository.git`)}retry:\n  attempts: 1\n`);
    const run = await execa(
      process.execPath,
      [CLI, 'bootstrap', `ssh://root@${HOST_NAME}`, '--ssh-config', ssh.configFile, '--config', broken, '--package', deb, '--agent-timeout', '90s'],
      { reject: false, timeout: 240_000 },
    );
    process.stderr.write(`[host] bootstrap: broken repository\n${run.stdout}\n${run.stderr}\n`);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/^config: wrote \/etc\/hostkit\/agent\.yaml/m);
    expect(run.stdout).toMatch(/^secrets: unchanged \(.*kept: on the host, no --secret/m);
    expect(run.stderr).toMatch(/^hostkit: error: hostkit-agent\.service on ssh:test-host could not run: fetch failed: .*no-such-repository/m);
    expect(run.stderr).toMatch(/Its last journal lines:\n.*hostkit-agent/);
    expect(run.stderr).toMatch(/\[BOOTSTRAP_AGENT_FAILED\]$/m);
    noSecretIn(run.stdout + run.stderr);
  });
});
