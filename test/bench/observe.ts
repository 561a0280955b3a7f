// npm run bench:observe -- [--units 200] [--runs 5]   (needs root: boots a test host)
// How long the systemd driver takes to observe N owned units on a real booted
// host, and how many processes it spawns doing so (it must not grow with N).
import { parseArgs } from 'node:util';
import { silentLogger } from '../../reconciler/core/log.js';
import type { Resource } from '../../reconciler/core/resource.js';
import { Redactor, SecretResolver } from '../../reconciler/core/secrets.js';
import type { UnitSpec } from '../../reconciler/core/specs.js';
import { createRunServices } from '../../reconciler/drivers/run.js';
import { unitDriver } from '../../reconciler/drivers/systemd/driver.js';
import type { DriverContext } from '../../reconciler/drivers/types.js';
import type { ExecOptions, Host } from '../../reconciler/hosts/types.js';
import { bootHost } from '../host/machine.js';

const { values } = parseArgs({ options: { units: { type: 'string', default: '200' }, runs: { type: 'string', default: '5' } } });
const sizes = [...new Set([10, Math.round(Number(values.units) / 4), Number(values.units)])].filter((n) => n > 0);
const runs = Number(values.runs);

const machine = await bootHost();
try {
  const rows: { units: number; medianMs: number; maxMs: number; processes: number }[] = [];
  let written = 0;
  for (const n of sizes) {
    // Owned units, running, as HostKit would have left them.
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push(`hk-bench-${i}.service`);
    for (let i = written; i < n; i++) {
      await machine.host.writeFile(`/etc/systemd/system/${names[i]}`, `[Service]\nExecStart=/usr/bin/sleep infinity\nUser=nobody\n`, {
        uid: 0,
        gid: 0,
        mode: 0o644,
      });
    }
    written = Math.max(written, n);
    await machine.exec('systemctl', ['daemon-reload']);
    await machine.exec('systemctl', ['start', ...names]);

    let spawned = 0;
    const counting: Host = Object.assign(Object.create(machine.host) as Host, {
      exec: (file: string, args: readonly string[], options?: ExecOptions) => {
        spawned++;
        return machine.host.exec(file, args, options);
      },
    });
    const log = silentLogger();
    const ctx: DriverContext = {
      run: createRunServices({ host: counting, stateDirectory: '/var/lib/hostkit', log }),
      host: counting,
      hostManifest: { apiVersion: 'hostkit.dev/v1', kind: 'Host', metadata: { name: 'bench' }, spec: {} },
      stateDirectory: '/var/lib/hostkit',
      mode: 'plan',
      log,
      fileDigests: new Map(),
      digestKey: Buffer.alloc(32, 7),
      inventory: { version: 1, host: 'bench', resources: {} },
      written: new Map(),
      warnings: [],
      secrets: new SecretResolver({ host: counting, redactor: new Redactor() }),
    };
    const resources: Resource<UnitSpec>[] = names.map((unit) => ({
      id: `unit/${unit}`,
      kind: 'unit',
      name: unit,
      dependsOn: [],
      origin: { file: 'bench' },
      spec: { unit } as UnitSpec,
    }));
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      spawned = 0;
      const started = performance.now();
      const observed = await unitDriver.observe(resources, ctx, unitDriver.createRun!(ctx));
      times.push(performance.now() - started);
      if (observed.size !== n || [...observed.values()].some((o) => o.state?.active !== 'active')) throw new Error('observe missed units');
    }
    times.sort((a, b) => a - b);
    rows.push({ units: n, medianMs: Math.round(times[Math.floor(times.length / 2)]!), maxMs: Math.round(times.at(-1)!), processes: spawned });
  }
  const lines = [
    `hostkit bench:observe  systemd driver observing owned, running units on a booted Debian host (nspawn), ${runs} runs each`,
    '  units   median     max   processes spawned per observe',
    ...rows.map((r) => `  ${String(r.units).padStart(5)} ${String(r.medianMs).padStart(6)} ms ${String(r.maxMs).padStart(5)} ms   ${r.processes}`),
    '  target: 200 units well under 1 s, with a constant number of processes',
    JSON.stringify({ benchmark: 'observe', rows }),
    '',
  ];
  process.stdout.write(lines.join('\n'));
} finally {
  await machine.stop();
}
