// npm run bench:plan -- [--projects 1000] [--hosts 10] [--runs 5]
// Wall time and peak RSS of whole processes (node start-up included) that
// load, validate, expand and plan one host of a generated repository.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { generateRepository } from './generate.js';

const { values } = parseArgs({
  options: { projects: { type: 'string', default: '1000' }, hosts: { type: 'string', default: '10' }, runs: { type: 'string', default: '5' } },
});
const projects = Number(values.projects);
const hosts = Number(values.hosts);
const runs = Number(values.runs);
const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bench-'));
try {
  await generateRepository(dir, projects, hosts);
  const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'plan-run.js');
  const results: { wallMs: number; maxRssMB: number; validateMs: number; planMs: number; resources: number; changes: number }[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const { stdout } = await execa(process.execPath, [runner, dir, 'host-3']);
    const wallMs = Math.round(performance.now() - started);
    results.push({ wallMs, ...JSON.parse(stdout) });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const r = results[0]!;
  const summary = {
    benchmark: 'plan',
    node: process.version,
    projects,
    hosts,
    runs,
    resourcesOnHost: r.resources,
    wallMsMedian: median(results.map((x) => x.wallMs)),
    wallMsMax: Math.max(...results.map((x) => x.wallMs)),
    validateMsMedian: median(results.map((x) => x.validateMs)),
    planMsMedian: median(results.map((x) => x.planMs)),
    peakRssMBMax: Math.max(...results.map((x) => x.maxRssMB)),
    targets: { wallMs: 1500, peakRssMB: 300 },
  };
  process.stdout.write(
    [
      `hostkit bench:plan  ${projects} projects on ${hosts} hosts, planning host-3 (${r.resources} resources) against the fake host, ${runs} runs, node ${process.version}`,
      `  wall (whole process)  median ${summary.wallMsMedian} ms, max ${summary.wallMsMax} ms   target < 1500 ms`,
      `  peak RSS              max ${summary.peakRssMBMax} MB                     target < 300 MB`,
      `  inside: load+validate ${summary.validateMsMedian} ms, expand+observe+plan ${summary.planMsMedian} ms (medians)`,
      JSON.stringify(summary),
      '',
    ].join('\n'),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
