// npm run bench:fleet -- [--hosts 100] [--per-process 10] [--poll 10s] [--writers 20] [--reports 10]
// What a fleet costs, on this machine (a simulated fleet: test/support/fleet.ts):
//  1. the time for a commit to reach every host through 3 waves (a canary, an
//     early wave, then the rest), with webhook triggers (the forge double
//     wakes agents on every push to main and to the report branch) and with
//     polling only;
//  2. report pushes per second one report branch sustains, with many writers
//     racing (each push redone on the new tip when another won).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../../reconciler/core/log.js';
import { ReportWriter } from '../../reconciler/report/writeback.js';
import { fleetFile, startFleet, type SimHost } from '../support/fleet.js';
import { gitRemote } from '../support/git-remote.js';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100' },
    'per-process': { type: 'string', default: '10' },
    poll: { type: 'string', default: '10s' },
    writers: { type: 'string', default: '20' },
    reports: { type: 'string', default: '10' },
  },
});
const N = Number(values.hosts);
const name = (i: number) => `host-${String(i).padStart(3, '0')}`;
const early = Math.max(1, Math.round(N / 10));
const hosts: SimHost[] = Array.from({ length: N }, (_, i) => ({ name: name(i + 1), labels: { tier: i === 0 ? 'canary' : i <= early ? 'early' : 'main' } }));
const ROLLOUT = `apiVersion: hostkit.dev/v1
kind: Rollout
metadata: { name: bench }
spec:
  waves:
    - { name: canary, hosts: [${name(1)}] }
    - { name: early, selector: { matchLabels: { tier: early } } }
    - { name: main, selector: { matchLabels: { tier: main } } }
`;

async function rollout(webhooks: boolean): Promise<{ ms: number; waves: number[]; deliveries: number }> {
  const fleet = await startFleet({ hosts, pollInterval: webhooks ? '1h' : values.poll, webhooks, perProcess: Number(values['per-process']) });
  try {
    // The policy comes with the first commit, so that commit rolls out in waves too; the second is measured.
    await fleet.remote.push({ '.hostkit/rollout.yaml': ROLLOUT }, 'rollout policy');
    await fleet.waitFor(
      (r) => r.size === N && [...r.values()].every((x) => (x.result === 'applied' || x.result === 'no-changes') && !x.rollout?.held),
      900_000,
      'the first commits everywhere',
    );
    const head = await fleet.remote.push({ 'site/page.yaml': fleetFile('page', 'version 2\n') }, 'page v2');
    const start = Date.now();
    const deliveriesBefore = fleet.webhookDeliveries;
    const waveDone: number[] = [];
    await fleet.waitFor(
      (r) => {
        const at = (h: SimHost) => r.get(h.name)?.commit === head;
        for (const [i, tier] of ['canary', 'early', 'main'].entries()) {
          if (waveDone[i] === undefined && hosts.filter((h) => h.labels.tier === tier).every(at)) waveDone[i] = Date.now() - start;
        }
        return hosts.every(at);
      },
      900_000,
      'the measured commit everywhere',
    );
    return { ms: Date.now() - start, waves: waveDone, deliveries: fleet.webhookDeliveries - deliveriesBefore };
  } finally {
    await fleet.stop();
  }
}

async function pushRate(writers: number, perWriter: number): Promise<{ perSecond: number; attempts: number; pushes: number }> {
  const remote = await gitRemote();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bench-reports-'));
  try {
    await remote.push({ 'README.md': 'x\n' });
    const log = silentLogger();
    const all = Array.from(
      { length: writers },
      (_, i) =>
        new ReportWriter({
          url: remote.bare,
          branch: 'hostkit-status',
          dir: path.join(scratch, `w${i}`),
          author: { name: 'b', email: 'b@b' },
          log,
          maxAttempts: 30,
        }),
    );
    let attempts = 0;
    const start = Date.now();
    await Promise.all(
      all.map(async (w, i) => {
        for (let n = 0; n < perWriter; n++) {
          const r = await w.write({ [`status/h${i}.json`]: JSON.stringify({ n }) + '\n' }, `h${i} report ${n}`);
          attempts += r.attempts;
        }
      }),
    );
    const seconds = (Date.now() - start) / 1000;
    const pushes = (await remote.log('hostkit-status')).length;
    if (pushes !== writers * perWriter) throw new Error(`expected ${writers * perWriter} report commits, found ${pushes}`);
    return { perSecond: pushes / seconds, attempts, pushes };
  } finally {
    await remote.cleanup();
    await rm(scratch, { recursive: true, force: true });
  }
}

const fmt = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(1));
process.stdout.write(
  `hostkit fleet benchmark: ${N} simulated agents (re-rooted LocalHosts, File manifests), ${values['per-process']} per process, one bare repository and report branch, on ${os.cpus().length} cores (load average ${os.loadavg()[0]!.toFixed(1)})\n\n`,
);
process.stdout.write(`${'commit -> every host, 3 waves (1, ' + early + ', ' + (N - 1 - early) + ' hosts)'}\n`);
process.stdout.write(`${'trigger'.padEnd(34)}${'total s'.padStart(9)}${'wave 1 s'.padStart(10)}${'wave 2 s'.padStart(10)}${'wave 3 s'.padStart(10)}\n`);
const hook = await rollout(true);
process.stdout.write(
  `${'webhooks (main and report pushes)'.padEnd(34)}${fmt(hook.ms).padStart(9)}${fmt(hook.waves[0]).padStart(10)}${fmt(hook.waves[1]).padStart(10)}${fmt(hook.waves[2]).padStart(10)}   (${hook.deliveries} deliveries)\n`,
);
const poll = await rollout(false);
process.stdout.write(
  `${`polling only, every ${values.poll}`.padEnd(34)}${fmt(poll.ms).padStart(9)}${fmt(poll.waves[0]).padStart(10)}${fmt(poll.waves[1]).padStart(10)}${fmt(poll.waves[2]).padStart(10)}\n\n`,
);
const rate = await pushRate(Number(values.writers), Number(values.reports));
process.stdout.write(
  `report pushes one branch sustains: ${rate.perSecond.toFixed(1)}/s (${values.writers} writers racing, ${rate.pushes} reports, ${rate.attempts} push attempts in all; none lost)\n`,
);
