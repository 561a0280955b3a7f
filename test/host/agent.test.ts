// The agent end to end on a real host: a bare git repository on this machine is
// the remote (bind-mounted into the host), the agent runs inside the host as
// its own systemd service (installed with `hostkit agent install`), a push plus
// a signed webhook sent from inside the host gets applied and reported on the
// status branch, and a push without a webhook is picked up by polling.
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { gitRemote, type GitRemote } from '../support/git-remote.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { eventually, HOST_MANIFEST, HOST_NAME, service } from './reconcile.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const SECRET = 'whsec-3b7f0c9d2e41a6';
const CONFIG = '/etc/hostkit/agent.yaml';
const ENV_FILE = '/etc/hostkit/env/web.env';
// The bind source has to exist when the host boots (useHost runs before any test).
const REMOTE_ROOT = mkdtempSync(path.join(os.tmpdir(), 'hostkit-agent-e2e-'));
const INSIDE = '/srv/hostkit-remote';

function agentConfig(url: string, pollInterval: string): string {
  return `repository:
  url: ${url}
  branch: main
host: ${HOST_NAME}
pollInterval: ${pollInterval}
webhook:
  listen: 127.0.0.1:9780
  secretFile: /etc/hostkit/webhook-secret
report:
  branch: hostkit-status
drift:
  policy: report
  interval: 1h
logLevel: debug
`;
}

const manifests = (greeting: string) => ({
  'hosts/test-host.yaml': HOST_MANIFEST,
  'projects/web.yaml': service('web', 9181, `    environment:\n      GREETING: ${greeting}\n`),
});

async function journal(m: TestHost): Promise<string> {
  return (await m.host.exec('journalctl', ['-u', 'hostkit-agent.service', '--no-pager', '-n', '80', '-o', 'cat'])).stdout;
}

describeHost('hostkit agent on a real host: push + signed webhook, push + poll', () => {
  const machine = useHost({ bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: REMOTE_ROOT, containerPath: INSIDE }] });
  let remote: GitRemote;
  let url = '';

  beforeAll(async () => {
    remote = await gitRemote(REMOTE_ROOT);
    url = `${INSIDE}/${path.basename(path.dirname(remote.bare))}/config.git`;
  });
  afterAll(async () => {
    await remote?.cleanup();
    rmSync(REMOTE_ROOT, { recursive: true, force: true });
  });

  const envFile = async () => (await machine().host.readFile(ENV_FILE))?.toString('utf8') ?? '';
  const statusOnBranch = async () => {
    const text = await remote.show('hostkit-status', `status/${HOST_NAME}.json`);
    return text ? (JSON.parse(text) as { commit: string; result: string }) : undefined;
  };

  it('`hostkit agent install` writes, verifies, enables and starts the unit; the agent applies the branch head', async () => {
    const m = machine();
    const first = await remote.push(manifests('hello'), 'web: hello');
    await m.host.mkdir('/etc/hostkit', { uid: 0, gid: 0, mode: 0o755 });
    await m.host.writeFile('/etc/hostkit/webhook-secret', `${SECRET}\n`, { uid: 0, gid: 0, mode: 0o600 });
    // Polling effectively off for this part: only the start-up run and webhooks reconcile.
    await m.host.writeFile(CONFIG, agentConfig(url, '1h'), { uid: 0, gid: 0, mode: 0o644 });
    const install = await m.host.exec(NODE, [CLI, 'agent', 'install', '--config', CONFIG]);
    expect(install.stderr).toBe('');
    expect(install.exitCode).toBe(0);
    expect(install.stdout).toContain('/etc/systemd/system/hostkit-agent.service');
    expect((await m.host.exec('systemctl', ['is-enabled', 'hostkit-agent.service'])).stdout.trim()).toBe('enabled');
    const unit = (await m.host.readFile('/etc/systemd/system/hostkit-agent.service'))!.toString('utf8');
    expect(unit).toContain(`ExecStart=${[NODE, ...NODE_FLAGS, CLI].join(' ')} agent --config ${CONFIG}`);

    const applied = await eventually(async () => (await statusOnBranch())?.commit === first, 120_000, 500);
    if (!applied) throw new Error(`no status for ${first} on hostkit-status; agent journal:\n${await journal(m)}`);
    expect(await statusOnBranch()).toMatchObject({ commit: first, result: 'applied' });
    expect(await envFile()).toContain('GREETING="hello"');
    expect((await m.host.exec('systemctl', ['is-active', 'hostkit-agent.service'])).stdout.trim()).toBe('active');
    expect((await m.host.exec('systemctl', ['is-active', 'hk-web.service'])).stdout.trim()).toBe('active');
  });

  it('a push plus a signed webhook (sent from inside the host) gets applied and reported on the status branch naming the commit', async () => {
    const m = machine();
    const second = await remote.push(manifests('bonjour'), 'web: bonjour');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: second, repository: { full_name: 'acme/config' } });
    await m.host.writeFile('/tmp/push.json', body, { uid: 0, gid: 0, mode: 0o600 });
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const curl = (sig: string, delivery: string) =>
      m.host.exec('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '10',
        '-H',
        'Content-Type: application/json',
        '-H',
        'X-GitHub-Event: push',
        '-H',
        `X-GitHub-Delivery: ${delivery}`,
        '-H',
        `X-Hub-Signature-256: ${sig}`,
        '--data-binary',
        '@/tmp/push.json',
        'http://127.0.0.1:9780/webhook',
      ]);
    // A wrong signature changes nothing.
    expect((await curl(`sha256=${'0'.repeat(64)}`, randomUUID())).stdout).toBe('401');
    const sent = Date.now();
    expect((await curl(signature, randomUUID())).stdout).toBe('202');
    const landed = await eventually(async () => (await statusOnBranch())?.commit === second, 60_000, 200);
    if (!landed) throw new Error(`the webhook did not lead to a report for ${second}; agent journal:\n${await journal(m)}`);
    process.stderr.write(`[agent e2e] webhook -> status commit on hostkit-status: ${Date.now() - sent} ms\n`);
    expect(await envFile()).toContain('GREETING="bonjour"');
    expect(await statusOnBranch()).toMatchObject({ commit: second, result: 'applied' });
    expect((await remote.log('hostkit-status'))[0]).toContain(second);
    expect(await remote.show('main', `status/${HOST_NAME}.json`)).toBeUndefined();
    // Metrics are served through the webhook server.
    const metrics = (await m.host.exec('curl', ['-s', '--max-time', '5', 'http://127.0.0.1:9780/metrics'])).stdout;
    expect(metrics).toMatch(/hostkit_agent_runs_total\{host="test-host",result="applied"\} 2/);
    expect(metrics).toContain('hostkit_agent_last_applied_commit_timestamp_seconds');
    expect(metrics).toMatch(/hostkit_agent_webhook_requests_total\{host="test-host",outcome="unauthorized"\} 1/);
    const health = await m.host.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', 'http://127.0.0.1:9780/healthz']);
    expect(health.stdout).toBe('200');
  });

  it('a push without a webhook is picked up by polling', async () => {
    const m = machine();
    await m.host.writeFile(CONFIG, agentConfig(url, '2s'), { uid: 0, gid: 0, mode: 0o644 });
    await m.exec('systemctl', ['restart', 'hostkit-agent.service']);
    // The restarted agent has nothing new to do; then a push arrives with no webhook.
    await new Promise((r) => setTimeout(r, 3000));
    const third = await remote.push(manifests('hallo'), 'web: hallo');
    const picked = await eventually(async () => (await statusOnBranch())?.commit === third, 60_000, 250);
    if (!picked) throw new Error(`polling did not pick up ${third}; agent journal:\n${await journal(m)}`);
    expect(await envFile()).toContain('GREETING="hallo"');
    // No secret in what the agent logged.
    expect(await journal(m)).not.toContain(SECRET);
  });
});
