// npm run bench:validate -- [--runs 3]
// Time and peak RSS of whole processes (node start-up included) that load and
// validate a repository: a valid 1 MB manifest, and the inputs of issue #16's
// denial-of-service probe, which the loader's limits must refuse quickly.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { manifestYaml } from '../support/manifests.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, one: { type: 'string' } } });
const runs = Number(values.runs);
const HOST = manifestYaml({ kind: 'Host', name: 'web-1', spec: { acme: { email: 'ops@example.com' } } });
// The refused cases append their hostile field to this as raw text: those bytes are what the loader must refuse.
const head = (kind: string, name: string) => manifestYaml({ kind, name, on: ['web-1'] });

// A realistic project of about 5 KB: a service with 100 environment variables, a worker, a timer, a domain.
function project(i: number): string {
  const environment = Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`SETTING_${k}`, `value-${i}-${k}-abcdefghijklmnop`]));
  return manifestYaml({
    kind: 'Project',
    name: `app-${i}`,
    on: ['web-1'],
    spec: {
      runtime: 'node',
      service: { command: ['/usr/bin/node', 'server.js'], port: 10000 + i, environment },
      workers: [{ name: 'queue', command: ['/usr/bin/node', 'worker.js'] }],
      timers: [{ name: 'nightly', schedule: '0 3 * * *', command: ['/usr/bin/node', 'nightly.js'] }],
      domains: [{ name: `app-${i}.example.com` }],
    },
  });
}

interface Case {
  name: string;
  files: Record<string, string>;
  valid: boolean;
}

const CASES: Case[] = [
  {
    name: 'valid: one 1 MB file of 190 projects',
    files: { 'projects/all.yaml': Array.from({ length: 190 }, (_, i) => project(i)).join('---\n') },
    valid: true,
  },
  {
    name: 'refused: 60k groups',
    files: { 'accounts/deploy.yaml': `${head('Account', 'deploy')}  groups: [${Array.from({ length: 60_000 }, (_, i) => `g${i}`).join(', ')}]\n` },
    valid: false,
  },
  {
    name: 'refused: 60k aliases in one list',
    files: { 'projects/shop.yaml': `${head('Project', 'shop')}  runtime: static\n  x: &a 1\n  y: [${Array<string>(60_000).fill('*a').join(', ')}]\n` },
    valid: false,
  },
  {
    name: 'refused: 60k aliases, 6 files of 200 documents',
    files: Object.fromEntries(
      Array.from({ length: 6 }, (_, f) => [
        `projects/aliases-${f}.yaml`,
        Array.from(
          { length: 200 },
          (_, d) =>
            `${head('Project', `a${f}-${d}`)}  runtime: node\n  service:\n    command: [/usr/bin/node, s.js]\n    environment:\n      V0: &v x\n` +
            Array.from({ length: 50 }, (_, k) => `      V${k + 1}: *v\n`).join(''),
        ).join('---\n'),
      ]),
    ),
    valid: false,
  },
  {
    name: 'refused: 5 files of 100k firewall openings',
    files: Object.fromEntries(
      Array.from({ length: 5 }, (_, f) => [
        `firewall/f${f}.yaml`,
        `${head('FirewallRules', `f${f}`)}  openings: [${Array<string>(100_000).fill('{port: 8}').join(',')}]\n`,
      ]),
    ),
    valid: false,
  },
];

// Child mode: validate one repository, print the figures.
if (values.one) {
  // Loading what validation needs is its own figure: it is most of a small repository's time.
  const loading = performance.now();
  const { validateRepository } = await import('../../reconciler/manifests/index.js');
  const loadMs = Math.round(performance.now() - loading);
  const started = performance.now();
  const repo = await validateRepository(values.one);
  const ms = Math.round(performance.now() - started);
  const first = repo.diagnostics.find((d) => d.severity === 'error');
  process.stdout.write(
    JSON.stringify({
      ms,
      loadMs,
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      valid: repo.valid,
      first: first ? `${first.summary} ${first.location?.file}:${first.location?.line ?? '-'} ${first.detail}` : '',
    }),
  );
  process.exit(0);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bench-validate-'));
const self = fileURLToPath(import.meta.url);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const lines = [
    `hostkit bench:validate  ${runs} runs per case, node ${process.version}, ${os.availableParallelism()} cores; validate ms (in process), ms to load its modules, and wall ms and peak RSS of the whole process`,
  ];
  const rows = [];
  for (const [i, c] of CASES.entries()) {
    const repo = path.join(dir, `case-${i}`);
    for (const [file, text] of Object.entries({ 'hosts/web-1.yaml': HOST, ...c.files })) {
      await mkdir(path.dirname(path.join(repo, file)), { recursive: true });
      await writeFile(path.join(repo, file), text);
    }
    const bytes = Object.values(c.files).reduce((sum, t) => sum + Buffer.byteLength(t), 0);
    const results: { ms: number; loadMs: number; wallMs: number; maxRssMB: number; valid: boolean; first: string }[] = [];
    for (let r = 0; r < runs; r++) {
      const spawned = performance.now();
      const { stdout } = await execa(process.execPath, [...NODE_FLAGS, self, '--one', repo], { env: { PATH: process.env.PATH ?? '' }, extendEnv: false });
      results.push({ ...JSON.parse(stdout), wallMs: Math.round(performance.now() - spawned) });
    }
    const last = results[results.length - 1]!;
    if (last.valid !== c.valid) throw new Error(`${c.name}: expected valid=${c.valid}, got ${last.valid} (${last.first})`);
    const row = {
      name: c.name,
      bytes,
      msMedian: median(results.map((x) => x.ms)),
      msMax: Math.max(...results.map((x) => x.ms)),
      loadMsMedian: median(results.map((x) => x.loadMs)),
      wallMsMedian: median(results.map((x) => x.wallMs)),
      peakRssMB: Math.max(...results.map((x) => x.maxRssMB)),
    };
    rows.push(row);
    lines.push(
      `  ${c.name.padEnd(48)} ${String(Math.round(bytes / 1024)).padStart(6)} KB ${String(row.msMedian).padStart(7)} ms (max ${row.msMax}) load ${String(row.loadMsMedian).padStart(4)} ms wall ${String(row.wallMsMedian).padStart(5)} ms ${String(row.peakRssMB).padStart(5)} MB  ${last.first.slice(0, 90)}`,
    );
  }
  lines.push(
    '  target: the valid 1 MB file under 2000 ms; refusals no slower than a valid file of the same size',
    JSON.stringify({ benchmark: 'validate', node: process.version, runs, rows }),
    '',
  );
  process.stdout.write(lines.join('\n'));
} finally {
  await rm(dir, { recursive: true, force: true });
}
