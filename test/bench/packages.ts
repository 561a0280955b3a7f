// npm run bench:packages -- [--packages 50] [--runs 9] [--local]   (needs root: boots a test host; --local reads this machine's dpkg database instead)
// The package driver's noop: N declared packages, all installed, desired, observed and
// planned as a plan does it. Prints the processes spawned (one dpkg-query, whatever N) and
// the time, median and max of the runs. No apt command may run.
import { parseArgs } from 'node:util';
import type { Resource } from '../../reconciler/core/resource.js';
import { packageDriver, type PackageSpec } from '../../reconciler/drivers/package/index.js';
import { listInstalled } from '../../reconciler/drivers/package/apt.js';
import { LocalHost } from '../../reconciler/hosts/local.js';
import type { ExecOptions, Host } from '../../reconciler/hosts/types.js';
import { bootHost } from '../host/machine.js';
import { driverContext } from '../support/context.js';

const { values } = parseArgs({
  options: { packages: { type: 'string', default: '50' }, runs: { type: 'string', default: '9' }, local: { type: 'boolean', default: false } },
});
const count = Number(values.packages);
const runs = Number(values.runs);

const machine = values.local ? undefined : await bootHost();
try {
  const host: Host = machine?.host ?? new LocalHost();
  const spawned: string[] = [];
  const counting: Host = Object.assign(Object.create(host) as Host, {
    exec: (file: string, args: readonly string[], options?: ExecOptions) => {
      spawned.push(file === 'env' ? (args.find((a) => !a.includes('=')) ?? file) : file);
      return host.exec(file, args, options);
    },
  });
  // What the host has, as a manifest would name it: postgresql for postgresql-15 (a flavour), the rest by their names.
  const installed = [...(await listInstalled(host)).keys()];
  const names = [...new Set([...(installed.some((n) => /^postgresql-\d+$/.test(n)) ? ['postgresql'] : []), ...installed])].slice(0, count);
  if (names.length < count) throw new Error(`the host has only ${names.length} packages installed, not ${count}`);
  const resources: Resource<PackageSpec>[] = names.map((name) => ({
    id: `package/${name}`,
    kind: 'package',
    name,
    dependsOn: [],
    origin: { file: 'hosts/bench.yaml', line: 1 },
    spec: { name, neededBy: ['Host spec.packages'] },
  }));
  const times: number[] = [];
  let processes = 0;
  for (let r = 0; r < runs; r++) {
    const ctx = driverContext(counting, { mode: 'plan' });
    spawned.length = 0;
    const started = performance.now();
    const state = packageDriver.createRun!(ctx);
    const [wanted, observed] = await Promise.all([packageDriver.desire(resources, ctx, state), packageDriver.observe(resources, ctx, state)]);
    const changes = resources.map((resource) =>
      packageDriver.plan({ resource, desired: wanted.get(resource.id)!.desired, observed: observed.get(resource.id), orphan: false }),
    );
    times.push(performance.now() - started);
    const pending = changes.filter((c) => c.action !== 'noop');
    if (pending.length > 0) throw new Error(`not a noop: ${pending.map((c) => `${c.action} ${c.id}`).join(', ')}`);
    if (spawned.some((p) => p.startsWith('apt'))) throw new Error(`apt ran on a noop: ${spawned.join(', ')}`);
    processes = Math.max(processes, spawned.length);
  }
  times.sort((a, b) => a - b);
  const row = { packages: count, medianMs: Math.round(times[Math.floor(times.length / 2)]! * 10) / 10, maxMs: Math.round(times.at(-1)! * 10) / 10, processes };
  const lines = [
    `hostkit bench:packages  the package driver's noop (desire, observe, plan) of ${count} installed packages on ${machine ? 'a booted Debian host (nspawn)' : "this machine's dpkg database"}, ${runs} runs`,
    '  packages   median      max   processes spawned per noop',
    `  ${String(row.packages).padStart(8)} ${String(row.medianMs).padStart(6)} ms ${String(row.maxMs).padStart(6)} ms   ${row.processes} (${spawned.join(', ')})`,
    '  target: one process (dpkg-query), no apt, under 50 ms',
    JSON.stringify({ benchmark: 'packages', ...row }),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (processes !== 1 || row.medianMs >= 50) process.exitCode = 1;
} finally {
  await machine?.stop();
}
