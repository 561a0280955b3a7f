// npm run bench:plan -- [--projects 1000] [--hosts 10] [--runs 5] [--baseline DIR]
// Wall time and peak RSS of whole processes (node start-up included) that
// load, validate, expand and plan one host of a generated repository.
// --baseline DIR: a built checkout of another commit; its runs alternate with
// this build's on the same repository (each with its own parse cache), and
// both are printed.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { generateRepository } from './generate.js';

const { values } = parseArgs({
  options: {
    projects: { type: 'string', default: '1000' },
    hosts: { type: 'string', default: '10' },
    runs: { type: 'string', default: '5' },
    baseline: { type: 'string' },
  },
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

type Side = 'this' | 'baseline';
const runners: Record<Side, string> = {
  this: path.join(path.dirname(fileURLToPath(import.meta.url)), 'plan-run.js'),
  baseline: path.resolve(values.baseline ?? '.', 'dist/test/bench/plan-run.js'),
};
const sides: Side[] = values.baseline ? ['baseline', 'this'] : ['this'];

// `runs` runs of each side, alternated (the side that goes first alternates too); `cached`: each side its own parse cache.
async function series(cached: boolean): Promise<Record<Side, Run[]>> {
  const results: Record<Side, Run[]> = { this: [], baseline: [] };
  for (let i = 0; i < runs; i++) {
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
      const env = { PATH: process.env.PATH ?? '', ...(cached ? { HOSTKIT_CACHE_DIR: `${cacheDir}-${side}` } : {}) };
      const started = performance.now();
      const { stdout } = await execa(process.execPath, [...NODE_FLAGS, runners[side], repoDir, 'host-3'], { env, extendEnv: false });
      results[side].push({ wallMs: Math.round(performance.now() - started), ...JSON.parse(stdout) });
    }
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
  const coldRuns = await series(false);
  await series(true); // primes the caches
  const warmRuns = await series(true);
  const cold = coldRuns.this;
  const rows = [summarize('cold (no parse cache)', cold), summarize('warm (parse cache)', warmRuns.this)];
  if (values.baseline) rows.push(summarize('baseline cold', coldRuns.baseline), summarize('baseline warm', warmRuns.baseline));
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
