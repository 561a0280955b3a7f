import path from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { silentLogger } from '../../reconciler/core/log.js';
import { listRuns } from '../../reconciler/apply/journal.js';
import { reconcileHost } from '../../reconciler/engine.js';
import { writeRepo } from '../support/fixtures.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { appliedOk, eventually, HOST_MANIFEST, HOST_NAME, service, unitProperty } from './reconcile.js';

// The crash test: applies killed with SIGKILL at random moments across the
// apply window. After each kill every file is either as before or as after
// (never half-written); the next run (which first rolls the interrupted run
// back) converges: files as declared, the service restarted onto them (its
// process sees the new environment: no restart was lost), nothing left to do.

const RUNS = Number(process.env.HOSTKIT_CRASH_RUNS ?? 30);
const UNIT = '/etc/systemd/system/hk-crash.service';
const ENV = '/etc/hostkit/env/crash.env';
const VERSION_FILE = '/srv/crash/version.txt';
const FILES = [UNIT, ENV, VERSION_FILE, '/var/lib/hostkit/inventory.json'];

function project(version: string): string {
  return service(
    'crash',
    9301,
    `    environment:
      VERSION: ${version}
  files:
    - name: version.txt
      content: "${version}\\n"
  health:
    http:
      path: /version.txt
      bodyContains: ${version}
    timeout: 2s
    retries: 3
`,
  );
}

// A small seeded generator, so a failing sequence can be replayed (HOSTKIT_CRASH_SEED).
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function snapshot(m: TestHost): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const p of FILES) out[p] = (await m.host.readFile(p))?.toString('utf8');
  // The inventory's bytes carry the time of the apply; what it records is compared.
  const inventory = out['/var/lib/hostkit/inventory.json'];
  if (inventory) out['/var/lib/hostkit/inventory.json'] = JSON.stringify({ ...(JSON.parse(inventory) as object), appliedAt: undefined });
  return out;
}

function child(m: TestHost, repoDir: string, stopAt?: 'dry-run') {
  return execa(
    'node',
    [path.resolve('dist/test/support/reconcile-child.js'), repoDir, HOST_NAME, String(m.leaderPid), m.machine, ...(stopAt ? [stopAt] : [])],
    {
      env: {},
      reject: false,
    },
  );
}

/** Resolves when the child says its apply started (or has ended anyway). */
function applyStarted(proc: ReturnType<typeof child>): Promise<void> {
  return new Promise((resolve) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('apply started')) resolve();
    });
    void proc.then(() => resolve());
  });
}

describeHost('crash safety: SIGKILL at random moments during apply, on a real host', () => {
  const machine = useHost();

  it(`${RUNS} applies killed at random moments: every file old or new, the next run converges`, { timeout: 900_000 }, async () => {
    const m = machine();
    const started = Date.now();
    const seed = Number(process.env.HOSTKIT_CRASH_SEED ?? Date.now() % 1_000_000);
    const next = random(seed);
    const repoFor = (v: string) => writeRepo({ 'hosts/test-host.yaml': HOST_MANIFEST, 'projects/crash.yaml': project(v) });

    // The apply window: from the moment a child process opens its run journal (after Node start-up,
    // load and observe, which change nothing) to its end. Kills land at random across it, with 20% spare
    // since this shared machine's speed varies.
    expect((await child(m, await repoFor('v-setup'))).stdout).toContain('HOSTKIT-CHILD: applied');
    const calibration = child(m, await repoFor('v0'));
    await applyStarted(calibration);
    const t0 = Date.now();
    expect((await calibration).stdout).toContain('HOSTKIT-CHILD: applied');
    const window = Math.round((Date.now() - t0) * 1.2);
    let previous = await snapshot(m);

    const kills: { run: number; delayMs: number; finished: boolean; mixed: boolean }[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const version = `v${i}`;
      const repoDir = await repoFor(version);
      const delayMs = Math.round(next() * window);
      const proc = child(m, repoDir);
      await applyStarted(proc);
      await new Promise((r) => setTimeout(r, delayMs));
      proc.kill('SIGKILL');
      const ended = await proc;
      const finished = ended.signal !== 'SIGKILL';
      const between = await snapshot(m);

      // The next run: rolls the interrupted run back (if any), then applies the same commit.
      const outcome = await reconcileHost({ repoDir, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: {} });
      const result = appliedOk(outcome);
      expect(['applied', 'no-changes']).toContain(result.status);
      const now = await snapshot(m);

      // Every file was, right after the kill, either its old or its new bytes.
      let fresh = 0;
      let stale = 0;
      for (const p of FILES) {
        expect([previous[p], now[p]], `${p} after a kill at ${delayMs} ms (run ${i}, seed ${seed})`).toContain(between[p]);
        if (now[p] !== previous[p] && between[p] === now[p]) fresh++;
        if (now[p] !== previous[p] && between[p] === previous[p]) stale++;
      }
      kills.push({ run: i, delayMs, finished, mixed: fresh > 0 && stale > 0 });

      // Converged: the declared files, the service running on them, nothing pending, no open run.
      expect(now[VERSION_FILE]).toBe(`${version}\n`);
      expect(now[ENV]).toContain(`VERSION="${version}"`);
      expect(await unitProperty(m, 'hk-crash.service', 'ActiveState')).toBe('active');
      expect(await unitProperty(m, 'hk-crash.service', 'NeedDaemonReload')).toBe('no');
      const pid = await unitProperty(m, 'hk-crash.service', 'MainPID');
      expect((await m.exec('cat', [`/proc/${pid}/environ`])).stdout.split('\0'), `restart lost at run ${i} (kill at ${delayMs} ms, seed ${seed})`).toContain(
        `VERSION=${version}`,
      );
      expect(
        await eventually(
          async () => (await m.host.exec('curl', ['-s', '--max-time', '2', 'http://127.0.0.1:9301/version.txt'])).stdout === `${version}\n`,
          10_000,
        ),
      ).toBe(true);
      expect((await m.host.readFile('/var/lib/hostkit/systemd-pending.json'))?.toString() ?? '').not.toContain('hk-crash');
      expect(await m.host.stat('/var/lib/hostkit/current-run.json')).toBeUndefined();
      previous = now;
    }

    // A last dry run finds nothing to do.
    const last = await reconcileHost({ repoDir: await repoFor(`v${RUNS}`), hostName: HOST_NAME, host: m.host, dryRun: true, log: silentLogger(), env: {} });
    if (last.stage !== 'planned') throw new Error(`expected a plan, got ${last.stage}`);
    expect(last.planned.plan.changes.filter((c) => c.action !== 'noop')).toEqual([]);

    const runs = await listRuns(m.host, '/var/lib/hostkit');
    const interrupted = runs.filter((r) => r.status === 'interrupted-rolled-back').length;
    const killedMidway = kills.filter((k) => !k.finished).length;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(
      `[crash] ${RUNS} runs, seed ${seed}, kills 0-${window} ms after the apply started: ${killedMidway} killed before they finished, ${interrupted} interrupted runs rolled back at start-up, ` +
        `${kills.filter((k) => k.mixed).length} left a mix of old and new files; took ${seconds} s\n`,
    );
    expect(killedMidway).toBeGreaterThan(RUNS / 3);
  });
});
