// npm run bench:plan -- [--projects 1000] [--hosts 10] [--runs 5]
// Wall time and peak RSS of whole processes (node start-up included) that
// load, validate, expand and plan one host of a generated repository.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { generateRepository } from './generate.js';

const { values } = parseArgs({
  options: { projects: { type: 'string', default: '1000' }, hosts: { type: 'string', default: '10' }, runs: { type: 'string', default: '5' } },
});
const projects = Number(values.projects);
const hosts = Number(values.hosts);
const runs = Number(values.runs);
const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bench-'));
const cacheDir = path.join(dir, '.parse-cache');
const repoDir = path.join(dir, 'repo');

interface Run {
  wallMs: number;
  maxRssMB: number;
  validateMs: number;
  planMs: number;
  resources: number;
  changes: number;
}

async function series(env: Record<string, string>): Promise<Run[]> {
  const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'plan-run.js');
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const { stdout } = await execa(process.execPath, [...NODE_FLAGS, runner, repoDir, 'host-3'], { env, extendEnv: false });
    results.push({ wallMs: Math.round(performance.now() - started), ...JSON.parse(stdout) });
  }
  return results;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function summarize(name: string, results: Run[]) {
  return {
    name,
    wallMsMedian: median(results.map((x) => x.wallMs)),
    wallMsMax: Math.max(...results.map((x) => x.wallMs)),
    validateMsMedian: median(results.map((x) => x.validateMs)),
    planMsMedian: median(results.map((x) => x.planMs)),
    peakRssMBMax: Math.max(...results.map((x) => x.maxRssMB)),
  };
}

try {
  await generateRepository(repoDir, projects, hosts);
  // cold: no parse cache (every file parsed); warm: the cache holds every file (a re-run on an unchanged repository).
  const cold = await series({ PATH: process.env.PATH ?? '' });
  await series({ PATH: process.env.PATH ?? '', HOSTKIT_CACHE_DIR: cacheDir }); // primes the cache
  const warm = await series({ PATH: process.env.PATH ?? '', HOSTKIT_CACHE_DIR: cacheDir });
  const rows = [summarize('cold (no parse cache)', cold), summarize('warm (parse cache)', warm)];
  const lines = [
    `hostkit bench:plan  ${projects} projects on ${hosts} hosts, planning host-3 (${cold[0]!.resources} resources) against the fake host, ${runs} runs each, node ${process.version}, ${os.availableParallelism()} cores`,
    '  run                      wall median   wall max   load+validate   expand+observe+plan   peak RSS',
    ...rows.map(
      (r) =>
        `  ${r.name.padEnd(24)} ${String(r.wallMsMedian).padStart(8)} ms ${String(r.wallMsMax).padStart(7)} ms ${String(r.validateMsMedian).padStart(11)} ms ${String(r.planMsMedian).padStart(17)} ms ${String(r.peakRssMBMax).padStart(7)} MB`,
    ),
    '  targets: under 1500 ms wall, under 300 MB peak RSS (whole process, node start-up included)',
    JSON.stringify({ benchmark: 'plan', node: process.version, projects, hosts, runs, resourcesOnHost: cold[0]!.resources, rows }),
    '',
  ];
  process.stdout.write(lines.join('\n'));
} finally {
  await rm(dir, { recursive: true, force: true });
}
