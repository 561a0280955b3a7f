// The simulated fleet (test/support/fleet.ts): FLEET_AGENTS agent processes
// (default 20) sharing one bare repository and one report branch. A commit
// rolls out in waves, in an order proven from the report branch's history; a
// failing canary halts the rest until a fixing commit; every agent keeps
// exactly one status file, at the right commit.
import { createHmac } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetFile, reportHistory, startFleet, type ReportEvent, type SimFleet, type SimHost } from '../support/fleet.js';

const N = Number(process.env.FLEET_AGENTS ?? 20);
const name = (i: number) => `host-${String(i).padStart(2, '0')}`;
const LAB = 2;
// host-01 the canary; then the prod hosts (two batches); the last LAB hosts are in no wave.
const hosts: SimHost[] = Array.from({ length: N }, (_, i) => ({ name: name(i + 1), labels: { env: i + 1 > N - LAB ? 'lab' : 'prod' } }));
const canary = name(1);
const prod = hosts.filter((h) => h.labels.env === 'prod' && h.name !== canary).map((h) => h.name);
const lab = hosts.filter((h) => h.labels.env === 'lab').map((h) => h.name);
const CANARY_BAKE_MS = 2000;

const ROLLOUT = `apiVersion: hostkit.dev/v1
kind: Rollout
metadata: { name: default }
spec:
  waves:
    - { name: canary, hosts: [${canary}], bake: ${CANARY_BAKE_MS}ms }
    - { name: prod, selector: { matchLabels: { env: prod } }, batch: 50%, bake: 1s }
`;

let fleet: SimFleet;
// The loopback notification server every agent notifies (a generic webhook, HMAC-signed).
const NOTIFY_SECRET = 'notify-secret-0123456789';
const notices: { kind: string; host: string; commit?: string; sender: string }[] = [];
const badSignatures: string[] = [];
let notifyServer: http.Server;
let secretFile = '';

beforeAll(async () => {
  notifyServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const expected = `sha256=${createHmac('sha256', NOTIFY_SECRET).update(body).digest('hex')}`;
      if (req.headers['x-hostkit-signature'] !== expected) badSignatures.push(body);
      else notices.push(JSON.parse(body) as (typeof notices)[number]);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => notifyServer.listen(0, '127.0.0.1', r));
  const notifyUrl = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/notify`;
  secretFile = path.join(os.tmpdir(), `hostkit-fleet-notify-${process.pid}.secret`);
  await writeFile(secretFile, NOTIFY_SECRET);
  fleet = await startFleet({
    hosts,
    pollInterval: '5s',
    webhooks: true,
    agentConfig: () => ({ notifications: { channels: [{ type: 'webhook', url: notifyUrl, secretFile }] } }),
    // On the canary only, /srv/app/blocked is a regular file: a File below it fails there and is rolled back.
    // Elsewhere it is a directory, so the same File applies.
    prepare: async (host, root) => {
      await mkdir(path.join(root, 'srv/app'), { recursive: true });
      if (host === canary) await writeFile(path.join(root, 'srv/app/blocked'), 'not a directory\n');
      else await mkdir(path.join(root, 'srv/app/blocked'));
    },
  });
  await fleet.waitFor(
    (r) => hosts.every((h) => r.get(h.name)?.commit === fleet.initial && r.get(h.name)?.result === 'applied'),
    120_000,
    'the first commit everywhere',
  );
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
  notifyServer?.close();
  if (secretFile) await rm(secretFile, { force: true });
});

const hostkit = (...args: string[]) => execa('node', [path.resolve('dist/reconciler/cli.js'), ...args]);

/** The report-branch index of the first report of `host` saying `commit` applied. */
function appliedAt(history: ReportEvent[], host: string, commit: string): ReportEvent {
  const e = history.find((x) => x.host === host && x.report.commit === commit && ['applied', 'no-changes'].includes(x.report.result));
  if (!e) throw new Error(`no report of ${host} applying ${commit}`);
  return e;
}

describe('a simulated fleet', () => {
  let rolled: string;

  it('rolls a commit out in waves: the canary, its bake, then the prod batches in order; hosts in no wave at once', async () => {
    rolled = await fleet.remote.push({ '.hostkit/rollout.yaml': ROLLOUT, 'site/page.yaml': fleetFile('page', 'version 2\n') }, 'rollout policy and page v2');
    await fleet.waitFor((r) => hosts.every((h) => r.get(h.name)?.commit === rolled), 180_000, 'the second commit everywhere');
    const history = await reportHistory(fleet.remote.bare);
    const c = appliedAt(history, canary, rolled);
    const firstBatch = prod.slice(0, Math.ceil(prod.length / 2));
    const secondBatch = prod.slice(firstBatch.length);
    for (const h of prod) {
      const e = appliedAt(history, h, rolled);
      expect(e.index, `${h} applied after the canary`).toBeGreaterThan(c.index);
      // It started applying only after the canary's bake (its run began after the canary's report plus the bake).
      expect(Date.parse(e.report.startedAt), `${h} waited for the canary's bake`).toBeGreaterThanOrEqual(Date.parse(c.report.finishedAt) + CANARY_BAKE_MS);
      expect(e.report.rollout?.wave).toBe(2);
    }
    const lastOfFirst = Math.max(...firstBatch.map((h) => appliedAt(history, h, rolled).index));
    for (const h of secondBatch) expect(appliedAt(history, h, rolled).index, `${h} (batch 2) after all of batch 1`).toBeGreaterThan(lastOfFirst);
    for (const h of secondBatch) expect(appliedAt(history, h, rolled).report.rollout?.batch).toBe(2);
    // Hosts in no wave did not wait for the canary's bake.
    for (const h of lab) expect(Date.parse(appliedAt(history, h, rolled).report.startedAt)).toBeLessThan(Date.parse(c.report.finishedAt) + CANARY_BAKE_MS);
    // While they waited, prod hosts said so on the report branch, naming the wave.
    expect(history.some((e) => prod.includes(e.host) && e.report.rollout?.held?.commit === rolled && /wave 1/.test(e.report.rollout.held.reason))).toBe(true);
  }, 240_000);

  let broken: string;

  it('halts every later wave when the canary fails; hosts in no wave still deploy', async () => {
    broken = await fleet.remote.push({ 'site/blocked.yaml': fleetFile('blocked', 'x\n', '/srv/app/blocked/x') }, 'a file the canary cannot write');
    const reports = await fleet.waitFor(
      (r) =>
        r.get(canary)?.commit === broken &&
        r.get(canary)?.result === 'rolled-back' &&
        prod.every((h) => r.get(h)?.rollout?.held?.state === 'halted') &&
        lab.every((h) => r.get(h)?.commit === broken),
      120_000,
      'the canary failing and the prod hosts halted',
    );
    for (const h of prod) {
      expect(reports.get(h)!.commit, `${h} keeps the previous commit`).toBe(rolled);
      expect(reports.get(h)!.rollout!.held!.reason).toMatch(/^held by rollout at wave 1 \(canary\)/);
    }
    // Still halted a while later: nothing of the broken commit reached a prod host.
    await new Promise((r) => setTimeout(r, 3000));
    const history = await reportHistory(fleet.remote.bare);
    expect(history.filter((e) => prod.includes(e.host) && e.report.commit === broken)).toEqual([]);
  }, 180_000);

  it('resumes with a commit that fixes the failure; one status file per agent, each at that commit', async () => {
    const fixed = await fleet.remote.push({ 'site/blocked.yaml': undefined }, 'drop the file the canary cannot write');
    const reports = await fleet.waitFor(
      (r) => hosts.every((h) => r.get(h.name)?.commit === fixed && !r.get(h.name)?.rollout?.held),
      180_000,
      'the fix everywhere',
    );
    expect([...reports.keys()].sort()).toEqual(hosts.map((h) => h.name));
    for (const r of reports.values()) expect(['applied', 'no-changes']).toContain(r.result);
    const history = await reportHistory(fleet.remote.bare);
    const c = appliedAt(history, canary, fixed);
    for (const h of prod) expect(appliedAt(history, h, fixed).index).toBeGreaterThan(c.index);
    // Every report commit wrote one host's own file: no report was lost or overwritten by another host.
    for (const e of history) expect(e.report.host).toBe(e.host);
  }, 240_000);

  let paused: string;

  it('pauses and resumes through commits on the report branch (hostkit fleet rollout), and fleet status shows it', async () => {
    await hostkit('fleet', 'rollout', 'pause', '--repo', fleet.remote.bare);
    paused = await fleet.remote.push({ 'site/page.yaml': fleetFile('page', 'version 5\n') }, 'page v5 while paused');
    const waveHosts = [canary, ...prod];
    await fleet.waitFor(
      (r) =>
        waveHosts.every((h) => r.get(h)?.rollout?.held?.state === 'paused' && r.get(h)?.rollout?.held?.commit === paused) &&
        lab.every((h) => r.get(h)?.commit === paused),
      120_000,
      'every host of the waves paused, the rest at the new commit',
    );
    const status = JSON.parse((await hostkit('fleet', 'status', '--repo', fleet.remote.bare, '-o', 'json')).stdout) as {
      commit: string;
      hosts: { host: string; commit: string; wave: number | null; stale: boolean; held: { state: string } | null }[];
    };
    expect(status.commit).toBe(paused);
    expect(status.hosts.map((h) => h.host)).toEqual(hosts.map((h) => h.name));
    expect(status.hosts.filter((h) => h.stale)).toEqual([]);
    expect(status.hosts.find((h) => h.host === canary)).toMatchObject({ wave: 1, held: { state: 'paused' } });
    expect(status.hosts.find((h) => h.host === lab[0])).toMatchObject({ commit: paused, wave: null, held: null });
    const progress = (await hostkit('fleet', 'rollout', '--repo', fleet.remote.bare)).stdout;
    expect(progress).toMatch(/^wave 1 canary: 0\/1 applied, 0 failed, 1 pending$/m);
    await hostkit('fleet', 'rollout', 'resume', '--repo', fleet.remote.bare);
    await fleet.waitFor(
      (r) => hosts.every((h) => r.get(h.name)?.commit === paused && !r.get(h.name)?.rollout?.held),
      180_000,
      'the paused commit everywhere after resume',
    );
  }, 240_000);

  it('sent exactly the expected notices: the canary rolled back once, each paused host once', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    expect(badSignatures).toEqual([]);
    const got = notices.map((n) => `${n.kind} ${n.host} ${n.commit?.slice(0, 12)}`).sort();
    const expected = [`rolled-back ${canary} ${broken.slice(0, 12)}`, ...[canary, ...prod].map((h) => `paused ${h} ${paused.slice(0, 12)}`)].sort();
    expect(got).toEqual(expected);
  });
});
