// npm run bench:deploy -- [--rounds 3] [--json FILE]   (root: boots a test host)
//
// How long a new version takes to serve under each deploy strategy, on a booted
// test host: two projects run the same small Python app (test/support/zdt-app.ts)
// from one git repository on the host, each pinned to a commit, each behind its
// own nginx site: `bg` with `deploy.strategy: blue-green`, `rs` with `restart`.
// Each round commits a new version and deploys it to one project, then to the
// other (each its own reconcile, through the engine as the agent runs it), and
// measures from the start of the reconcile until nginx answers the new version
// (polled every 20 ms), plus the reconcile's own wall time (for blue-green it
// includes the drain before the old instance stops) and the requests that failed
// meanwhile (the poller's own: an error status or no answer).
import os from 'node:os';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost } from '../../reconciler/engine.js';
import { hostHttpRequest } from '../../reconciler/hosts/http.js';
import { bootHost, type TestHost } from '../host/machine.js';
import { HOST_NAME, repo } from '../host/reconcile.js';
import { manifestYaml } from '../support/manifests.js';
import { zdtApp } from '../support/zdt-app.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, json: { type: 'string' } } });
const ROUNDS = Number(values.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`Expected --rounds N with N >= 1, got ${values.rounds}`);

const SRC = '/srv/bench-deploy-src';
const STRATEGIES = { bg: { strategy: 'blue-green', port: 9501 }, rs: { strategy: 'restart', port: 9511 } } as const;
type Name = keyof typeof STRATEGIES;

function project(name: Name, commit: string): string {
  return manifestYaml({
    kind: 'Project',
    name,
    on: [HOST_NAME],
    spec: {
      runtime: 'python',
      source: { git: { url: `file://${SRC}`, ref: commit } },
      service: { command: ['/usr/bin/python3', 'app.py'], port: STRATEGIES[name].port },
      deploy: { strategy: STRATEGIES[name].strategy },
      domains: [{ name: `${name}.bench.test`, tls: 'none' }],
      health: { http: { path: '/healthz', bodyContains: 'ok' }, timeout: '2s', retries: 2 },
    },
  });
}

async function commit(m: TestHost, version: string): Promise<string> {
  await m.host.writeFile(`${SRC}/app.py`, zdtApp(version), { uid: 0, gid: 0, mode: 0o644 });
  const git = (...args: string[]) => m.exec('git', ['-C', SRC, '-c', 'user.name=bench', '-c', 'user.email=bench@bench', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', version);
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

async function apply(m: TestHost, refs: Record<Name, string>): Promise<void> {
  const repoDir = await repo({ 'projects/bg.yaml': project('bg', refs.bg), 'projects/rs.yaml': project('rs', refs.rs) });
  const outcome = await reconcileHost({ repoDir, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: {} });
  if (outcome.stage !== 'applied' || outcome.result.status === 'rolled-back')
    throw new Error(`the deploy did not apply: ${JSON.stringify(outcome).slice(0, 2000)}`);
}

/** One GET of `/` through nginx: the body, or undefined for an error status or no answer. */
async function body(m: TestHost, name: Name): Promise<string | undefined> {
  try {
    const r = await hostHttpRequest(m.host, { port: 80, path: '/', hostHeader: `${name}.bench.test`, timeoutMs: 2000 });
    return r.status < 500 ? r.body.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Deploys `refs` and polls `name` from the start: seconds until it serves `want`, the reconcile's seconds, failed polls. */
async function servedAfter(m: TestHost, name: Name, refs: Record<Name, string>, want: string): Promise<{ servedS: number; wallS: number; failed: number }> {
  const started = performance.now();
  let done: number | undefined;
  const run = apply(m, refs).then(() => (done = performance.now()));
  run.catch(() => undefined);
  let servedS: number | undefined;
  let failed = 0;
  while (servedS === undefined || done === undefined) {
    const seen = await body(m, name);
    if (seen === undefined) failed++;
    if (seen === want && servedS === undefined) servedS = (performance.now() - started) / 1000;
    if (done !== undefined && performance.now() - done > 30_000) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await run;
  if (servedS === undefined) throw new Error(`${name}.bench.test never served ${want}`);
  return { servedS, wallS: (done! - started) / 1000, failed };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => os.loadavg().map((l) => l.toFixed(2));

const loadBefore = load();
process.stderr.write(`hostkit bench:deploy  ${ROUNDS} round(s); load ${loadBefore.join(' ')}\n`);
const m = await bootHost({ bootTimeoutMs: 180_000 });
try {
  await m.exec('git', ['init', '-q', '-b', 'main', SRC]);
  const refs: Record<Name, string> = { bg: await commit(m, 'v0'), rs: '' };
  refs.rs = refs.bg;
  await apply(m, refs);
  const rounds: Record<Name, { servedS: number; wallS: number; failed: number }[]> = { bg: [], rs: [] };
  for (let k = 1; k <= ROUNDS; k++) {
    const version = `v${k}`;
    const id = await commit(m, version);
    for (const name of ['bg', 'rs'] as const) {
      refs[name] = id;
      const r = await servedAfter(m, name, refs, version);
      rounds[name].push(r);
      process.stderr.write(
        `  ${version} ${STRATEGIES[name].strategy.padEnd(10)} served ${r.servedS.toFixed(2)} s after start; reconcile ${r.wallS.toFixed(2)} s; ${r.failed} failed polls\n`,
      );
    }
  }
  const loadAfter = load();
  const date = new Date().toISOString();
  const figures = (name: Name) => ({
    strategy: STRATEGIES[name].strategy,
    servedS: rounds[name].map((r) => r.servedS),
    servedMedianS: median(rounds[name].map((r) => r.servedS)),
    reconcileMedianS: median(rounds[name].map((r) => r.wallS)),
    failedPolls: rounds[name].map((r) => r.failed),
  });
  const result = {
    benchmark: 'deploy',
    date,
    rounds: ROUNDS,
    cores: os.availableParallelism(),
    load: { before: loadBefore, after: loadAfter },
    blueGreen: figures('bg'),
    restart: figures('rs'),
  };
  const line = (f: ReturnType<typeof figures>) =>
    `  ${f.strategy.padEnd(10)} served after ${f.servedMedianS.toFixed(2)} s (median of ${f.servedS.map((s) => s.toFixed(2)).join(', ')}); reconcile ${f.reconcileMedianS.toFixed(2)} s; failed polls ${f.failedPolls.join(', ')}`;
  process.stdout.write(
    [
      `hostkit bench:deploy  ${date}, ${ROUNDS} round(s), ${result.cores} cores, node ${process.version}, load ${loadBefore.join(' ')} -> ${loadAfter.join(' ')}`,
      '  served = from the start of the reconcile until nginx answers the new version (polled every 20 ms)',
      line(result.blueGreen),
      line(result.restart),
      JSON.stringify(result),
      '',
    ].join('\n'),
  );
  if (values.json) await writeFile(values.json, JSON.stringify(result, null, 1) + '\n');
} finally {
  await m.stop();
}
