// npm run bench:agent-host -- [--runs 5]   (root: boots a test host)
// Latency from a webhook's receipt to a one-site change applied, on a booted
// test host: the agent runs inside the host as its systemd service (installed
// with `hostkit agent install`), the remote is a bare repository on this
// machine bind-mounted into the host. Each run pushes a new response header
// value for one nginx site, sends the signed webhook from inside the host, and
// times until nginx serves the new value (through the host's own loopback) and
// until the status commit for that commit is on the status branch.
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hostHttpRequest } from '../../reconciler/hosts/http.js';
import { checkoutMounts } from '../host/harness.js';
import { bootHost } from '../host/machine.js';
import { eventually, HOST_MANIFEST, HOST_NAME, service } from '../host/reconcile.js';
import { gitRemote } from '../support/git-remote.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const SECRET = 'bench-webhook-secret-5c1e';
const CONFIG = '/etc/hostkit/agent.yaml';
const DOMAIN = 'web.bench.test';
const INSIDE = '/srv/hostkit-remote';

const manifests = (rev: number) => ({
  'hosts/test-host.yaml': HOST_MANIFEST,
  'projects/web.yaml': service('web', 9181, `  domains:\n    - name: ${DOMAIN}\n      tls: none\n      responseHeaders:\n        X-Bench-Rev: "${rev}"\n`),
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const servedRev = async (m: Awaited<ReturnType<typeof bootHost>>) => {
  try {
    return (await hostHttpRequest(m.host, { port: 80, path: '/', hostHeader: DOMAIN, timeoutMs: 2000 })).headers['x-bench-rev'];
  } catch {
    return undefined;
  }
};

const remoteRoot = mkdtempSync(path.join(os.tmpdir(), 'hostkit-bench-agent-host-'));
const remote = await gitRemote(remoteRoot);
const url = `${INSIDE}/${path.basename(path.dirname(remote.bare))}/config.git`;
const m = await bootHost({ bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: remoteRoot, containerPath: INSIDE }] });
try {
  const status = async () => JSON.parse((await remote.show('hostkit-status', `status/${HOST_NAME}.json`)) ?? '{}') as { commit?: string; result?: string };
  const first = await remote.push(manifests(0), 'rev 0');
  await m.host.mkdir('/etc/hostkit', { uid: 0, gid: 0, mode: 0o755 });
  await m.host.writeFile('/etc/hostkit/webhook-secret', `${SECRET}\n`, { uid: 0, gid: 0, mode: 0o600 });
  await m.host.writeFile(
    CONFIG,
    `repository:\n  url: ${url}\n  branch: main\nhost: ${HOST_NAME}\npollInterval: 1h\nwebhook:\n  listen: 127.0.0.1:9780\n  secretFile: /etc/hostkit/webhook-secret\nreport:\n  branch: hostkit-status\ndrift:\n  policy: report\n  interval: 1h\n`,
    { uid: 0, gid: 0, mode: 0o644 },
  );
  await m.exec(NODE, [CLI, 'agent', 'install', '--config', CONFIG]);
  if (!(await eventually(async () => (await status()).commit === first, 120_000, 250))) throw new Error(`the agent did not apply ${first}`);

  const applied: number[] = [];
  const reported: number[] = [];
  for (let rev = 1; rev <= runs; rev++) {
    const commit = await remote.push(manifests(rev), `rev ${rev}`);
    const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });
    await m.host.writeFile('/tmp/push.json', body, { uid: 0, gid: 0, mode: 0o600 });
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const headers = ['-H', 'Content-Type: application/json', '-H', `X-HostKit-Signature: ${signature}`, '-H', `X-HostKit-Delivery: ${randomUUID()}`];
    const sent = performance.now();
    const answer = await m.exec('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      ...headers,
      '--data-binary',
      '@/tmp/push.json',
      'http://127.0.0.1:9780/webhook',
    ]);
    if (answer.stdout !== '202') throw new Error(`the webhook was answered ${answer.stdout}`);
    if (!(await eventually(async () => (await servedRev(m)) === String(rev), 60_000, 20))) throw new Error(`nginx never served rev ${rev}`);
    applied.push(performance.now() - sent);
    if (!(await eventually(async () => (await status()).commit === commit, 60_000, 50))) throw new Error(`no status commit for ${commit}`);
    reported.push(performance.now() - sent);
  }
  const fmt = (xs: number[]) => `median ${Math.round(median(xs))} ms, max ${Math.round(Math.max(...xs))} ms`;
  process.stdout.write(
    [
      `hostkit bench:agent-host  ${runs} one-site changes on a booted test host (agent as its systemd service), load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      `  webhook sent -> nginx serves the change:      ${fmt(applied)}`,
      `  webhook sent -> status commit on the branch:  ${fmt(reported)}`,
      JSON.stringify({ benchmark: 'agent-host', runs, appliedMs: applied.map(Math.round), reportedMs: reported.map(Math.round) }),
      '',
    ].join('\n'),
  );
} finally {
  await m.stop();
  await remote.cleanup();
  rmSync(remoteRoot, { recursive: true, force: true });
}
