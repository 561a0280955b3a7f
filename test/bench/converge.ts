// npm run bench:converge -- [--apps 10 --apps 100] [--json FILE] [--sites auto|on|off] [--profile DIR]
//                            [--baseline DIR [--rounds 5]]
//                            [--target ssh [--delay 0 --delay 20 --delay 50] [--delay-with auto|netem|proxy]]
// (needs root: boots a test host)
//
// --target ssh: the same steps, but each is one process on THIS machine driving
// the host over SSH (ssh-step.ts: SshHost through sshd inside the host, reached
// by sshInto's ProxyCommand into its network namespace), once per --delay: a
// freshly booted host per delay, with that many ms added to each direction of
// the connection (see addDelay). Each step also prints SshHost.stats().
//
// --baseline DIR: a built checkout of another commit (its dist/ and node_modules/). After the
// usual steps, its noop and change runs alternate with this build's on the same booted host
// (`--rounds` of each, the side that goes first alternating too), so the two are compared
// under the same load; the medians of both are printed.
//
// The convergence benchmark (test/bench/SCENARIO.md): on a freshly
// booted Debian host, time four whole `hostkit reconcile` processes run INSIDE
// the host (apply, noop, check = --dry-run, change), with the peak RSS of each,
// and check after apply and after change that the host really converged.
import { lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { bootHost, type TestHost } from '../host/machine.js';
import { sshInto, type SshAccess } from '../host/ssh.js';
import { app2Name, appDomain, appName, appPort, BENCH_HOST, vhostRev, writeScenario } from './scenario.js';
import type { PhaseFigures, StepFigures } from './ssh-step.js';

const { values } = parseArgs({
  options: {
    apps: { type: 'string', multiple: true },
    json: { type: 'string' },
    sites: { type: 'string', default: 'auto' },
    profile: { type: 'string' },
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    target: { type: 'string', default: 'host' },
    delay: { type: 'string', multiple: true },
    'delay-with': { type: 'string', default: 'auto' },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`Expected --rounds N with N >= 1, got ${values.rounds}`);
if (values.target !== 'host' && values.target !== 'ssh') throw new Error(`Expected --target host or --target ssh, got ${values.target}`);
const overSsh = values.target === 'ssh';
if (overSsh && values.baseline) throw new Error('Expected --baseline without --target ssh: the alternated comparison runs inside the host');
if (!overSsh && values.delay) throw new Error('Expected --delay with --target ssh only');
const delays = (values.delay ?? (overSsh ? ['0', '20', '50'] : ['0'])).map(Number);
if (delays.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`Expected --delay MS with MS a whole number >= 0, got ${values.delay?.join(', ')}`);
const delayWith = values['delay-with'];
if (delayWith !== 'auto' && delayWith !== 'netem' && delayWith !== 'proxy') throw new Error(`Expected --delay-with auto, netem or proxy, got ${delayWith}`);
const sizes = (values.apps ?? ['10', '100']).map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 2))
  throw new Error(`Expected --apps N with N >= 2 (app-1 and app-2 are changed), got ${values.apps?.join(', ')}`);

const worktree = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const INSIDE_CODE = '/opt/hostkit';
const INSIDE_WORK = '/bench';
const INSIDE_BASELINE = '/opt/hostkit-baseline';
const NODE = `${INSIDE_CODE}/node_modules/node/bin/node`;
type Side = 'new' | 'baseline';
const cli = (side: Side) => `${side === 'new' ? INSIDE_CODE : INSIDE_BASELINE}/dist/reconciler/cli.js`;
const PG_CONF = '/etc/postgresql/15/main';

async function sitesEnabled(): Promise<boolean> {
  if (values.sites === 'on') return true;
  if (values.sites === 'off') return false;
  const { drivers } = await import('../../reconciler/drivers/registry.js');
  return drivers.has('site');
}

type Step = 'apply' | 'noop' | 'check' | 'change';
interface Row {
  apps: number;
  step: Step;
  wallS: number;
  peakRssMB: number;
  changes: number;
  /** --target ssh: the delay added to each direction, and SshHost.stats() of the whole step and of its parts. */
  delayMs?: number;
  ssh?: Omit<PhaseFigures, 'ms'> & { phases: Record<string, PhaseFigures> };
}

/** How a step runs: inside the host (a hostkit process there) or over SSH (an ssh-step process here). */
type RunStep = (step: Step, side?: Side) => Promise<Row & { report: unknown }>;

// Peak RSS of the hostkit process itself, read by a preload at exit (nothing installed in the test host).
const RSS_PRELOAD = `import { readFileSync, writeFileSync } from 'node:fs';
process.on('exit', () => {
  const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  if (process.env.HOSTKIT_BENCH_RSS && hwm) writeFileSync(process.env.HOSTKIT_BENCH_RSS, hwm[1]);
});
`;

async function inside(m: TestHost, work: string, step: Step, apps: number, side: Side = 'new'): Promise<Row & { report: unknown }> {
  const rssFile = `rss-${apps}-${step}-${side}`;
  const args = [
    ...NODE_FLAGS,
    '--import',
    `file://${INSIDE_WORK}/rss.mjs`,
    ...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${INSIDE_WORK}/prof`, `--cpu-prof-name=${apps}-${step}.cpuprofile`] : []),
    cli(side),
    'reconcile',
    '--repo',
    `${INSIDE_WORK}/repo`,
    '--host',
    BENCH_HOST,
    '-o',
    'json',
    ...(step === 'check' ? ['--dry-run'] : []),
    ...(values.profile ? ['--log-level', 'debug'] : []),
  ];
  const started = performance.now();
  const result = await m.host.exec(NODE, args, { env: { HOSTKIT_BENCH_RSS: `${INSIDE_WORK}/${rssFile}`, NO_COLOR: '1' } });
  const wallS = (performance.now() - started) / 1000;
  if (values.profile) await writeFile(path.join(values.profile, `${apps}-${step}.log`), result.stderr);
  if (result.exitCode !== 0)
    throw new Error(`hostkit ${step} (N=${apps}, ${side} build) exited ${result.exitCode}:\n${result.stderr.slice(-4000)}\n${result.stdout.slice(-2000)}`);
  const report = JSON.parse(result.stdout) as { applied?: unknown[]; status?: string; summary?: Record<string, number> };
  const changes =
    step === 'check' ? ['create', 'update', 'replace', 'delete'].reduce((n, k) => n + (report.summary?.[k] ?? 0), 0) : (report.applied?.length ?? Number.NaN);
  const peakRssMB = Number(await readFile(path.join(work, rssFile), 'utf8')) / 1024;
  return { apps, step, wallS, peakRssMB, changes, report };
}

// ssh's ProxyCommand for a slower link: as sshInto's, but every chunk either way is held DELAY ms, in order.
const DELAY_PROXY = `const delay = Number(process.argv[2]);
const later = delay > 0 ? (f) => setTimeout(f, delay) : (f) => f();
const socket = require('node:net').connect(22, '127.0.0.1');
socket.setNoDelay(true);
socket.on('error', (e) => { process.stderr.write('proxy: ' + e.message + '\\n'); process.exit(1); });
process.stdin.on('data', (chunk) => later(() => socket.write(chunk)));
process.stdin.on('end', () => later(() => socket.end()));
socket.on('data', (chunk) => later(() => process.stdout.write(chunk)));
socket.on('close', () => later(() => process.exit(0)));
`;

/**
 * Adds `ms` to each direction of the SSH connection; returns the ssh_config to use and how.
 * netem: `tc qdisc replace dev lo root netem delay MS` inside the host's namespace, where the
 * ProxyCommand meets sshd on the host's loopback, so each direction passes lo once (the host's
 * own loopback traffic, nginx to the apps, is delayed too). proxy: the ProxyCommand holds each
 * chunk MS ms before passing it on (for kernels built without netem; only the SSH link is slowed).
 */
async function addDelay(m: TestHost, access: SshAccess, work: string, ms: number): Promise<{ configFile: string; how: string }> {
  if (ms === 0) return { configFile: access.configFile, how: 'no delay added' };
  if (delayWith !== 'proxy') {
    const tc = await m.host.exec('tc', ['qdisc', 'replace', 'dev', 'lo', 'root', 'netem', 'delay', `${ms}ms`]);
    if (tc.exitCode === 0) return { configFile: access.configFile, how: `tc netem delay ${ms}ms on the host's lo (each direction passes it once)` };
    if (delayWith === 'netem') throw new Error(`tc netem inside ${m.machine} failed: ${tc.stderr.trim()}`);
    process.stderr.write(`  tc netem is not available (${tc.stderr.trim()}): the ProxyCommand adds the delay\n`);
  }
  const proxy = path.join(work, 'delay-proxy.cjs');
  await writeFile(proxy, DELAY_PROXY, { mode: 0o600 });
  const config = (await readFile(access.configFile, 'utf8')).replace(
    /^(\s*ProxyCommand) .*$/m,
    `$1 nsenter -t ${m.leaderPid} -n -- ${process.execPath} ${proxy} ${ms}`,
  );
  const configFile = path.join(work, `ssh_config-${ms}`);
  await writeFile(configFile, config, { mode: 0o600 });
  return { configFile, how: `the ProxyCommand holds each direction's bytes ${ms} ms (no netem in this kernel)` };
}

async function sshStep(m: TestHost, work: string, configFile: string, step: Step, apps: number, delayMs: number): Promise<Row & { report: unknown }> {
  const name = `${apps}-${delayMs}ms-${step}`;
  const args = [
    ...NODE_FLAGS,
    '--import',
    `file://${work}/rss.mjs`,
    ...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
    path.join(worktree, 'dist/test/bench/ssh-step.js'),
    '--config',
    configFile,
    '--target',
    `root@${m.hostname}`,
    '--repo',
    path.join(work, 'repo'),
    '--host',
    BENCH_HOST,
    '--cache',
    path.join(work, 'cache'),
    ...(step === 'check' ? ['--dry-run'] : []),
    ...(values.profile ? ['--trace', path.join(values.profile, `${name}.trace.jsonl`)] : []),
  ];
  const rssFile = path.join(work, `rss-${name}`);
  const started = performance.now();
  const result = await execa(process.execPath, args, { reject: false, env: { HOSTKIT_BENCH_RSS: rssFile, NO_COLOR: '1' } });
  const wallS = (performance.now() - started) / 1000;
  if (result.exitCode !== 0) throw new Error(`ssh step ${step} (N=${apps}, ${delayMs} ms) exited ${result.exitCode}:\n${result.stderr.slice(-4000)}`);
  const figures = JSON.parse(result.stdout) as StepFigures;
  const expected = step === 'check' ? 'planned' : step === 'noop' ? 'no-changes' : 'applied';
  if (figures.status !== expected)
    throw new Error(
      `ssh step ${step} (N=${apps}, ${delayMs} ms) ended ${figures.status}, not ${expected}${figures.failed ? `: ${figures.failed}` : ''} (after ${wallS.toFixed(1)} s)`,
    );
  const total = { requests: 0, roundTrips: 0, processes: 0 };
  for (const p of Object.values(figures.phases)) for (const k of ['requests', 'roundTrips', 'processes'] as const) total[k] += p[k];
  const peakRssMB = Number(await readFile(rssFile, 'utf8')) / 1024;
  return { apps, step, wallS, peakRssMB, changes: figures.changes, delayMs, ssh: { ...total, phases: figures.phases }, report: figures };
}

async function sh(m: TestHost, script: string): Promise<string> {
  return (await m.exec('bash', ['-c', script])).stdout;
}

/** Admin access for HostKit (root) to PostgreSQL over the socket, as the README asks of a managed host. */
async function preparePostgres(m: TestHost): Promise<void> {
  const hba = (await m.host.readFile(`${PG_CONF}/pg_hba.conf`))!.toString();
  const st = (await m.host.stat(`${PG_CONF}/pg_hba.conf`))!;
  const own = { uid: st.uid, gid: st.gid, mode: st.mode };
  await m.host.writeFile(`${PG_CONF}/pg_hba.conf`, hba.replace(/^local\s+all\s+postgres\s+peer\s*$/m, 'local all postgres peer map=hostkit'), own);
  const ident = (await m.host.readFile(`${PG_CONF}/pg_ident.conf`))!.toString();
  await m.host.writeFile(`${PG_CONF}/pg_ident.conf`, `${ident}hostkit root postgres\nhostkit postgres postgres\n`, own);
  await m.exec('systemctl', ['reload-or-restart', 'postgresql@15-main']);
  await sh(m, 'for i in $(seq 100); do runuser -u postgres -- psql -XtAq -c "select 1" >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1');
}

const units = (apps: number) => Array.from({ length: apps }, (_, k) => `hk-${appName(k + 1)}.service`);

async function invocationIds(m: TestHost, apps: number): Promise<Map<string, string>> {
  const out = await sh(m, `systemctl show --property=Id,InvocationID ${units(apps).join(' ')}`);
  const ids = new Map<string, string>();
  for (const block of out.split(/\n\s*\n/)) {
    const id = /^Id=(.*)$/m.exec(block)?.[1];
    const inv = /^InvocationID=(.*)$/m.exec(block)?.[1];
    if (id) ids.set(id, inv ?? '');
  }
  return ids;
}

async function nginxReloads(m: TestHost): Promise<number> {
  return Number((await sh(m, `journalctl -u nginx.service -o cat --no-pager | grep -c '^Reloaded' || true`)).trim());
}

// What BENCH-SCENARIO.md says a converged host looks like; throws listing every difference.
async function verifyConverged(m: TestHost, apps: number, changed: boolean, sites: boolean): Promise<string[]> {
  const problems: string[] = [];
  const active = await sh(m, `systemctl list-units --all --plain --no-legend --no-pager 'hk-app-*.service' | awk '$3 == "active" && $4 == "running"' | wc -l`);
  if (Number(active) !== apps) problems.push(`${active.trim()} of ${apps} app units active`);
  // Each app answers on its port (python http.server), and through nginx when sites are declared.
  const direct = await sh(
    m,
    `n=0; for p in $(seq ${appPort(1)} ${appPort(apps)}); do c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:$p/); [ "$c" = 200 ] && n=$((n+1)); done; echo $n`,
  );
  if (Number(direct) !== apps) problems.push(`${direct.trim()} of ${apps} apps answer 200 on their port`);
  if (sites) {
    const through = await sh(
      m,
      `n=0; for i in $(seq 1 ${apps}); do c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: app-$i.example.test" http://127.0.0.1/); [ "$c" = 200 ] && n=$((n+1)); done; echo $n`,
    );
    if (Number(through) !== apps) problems.push(`${through.trim()} of ${apps} sites answer 200 through nginx`);
    for (const i of [1, 2]) {
      const header = await sh(
        m,
        `curl -s -D - -o /dev/null --max-time 5 -H 'Host: ${appDomain(i)}' http://127.0.0.1/ | tr -d '\\r' | sed -n 's/^[Xx]-[Bb]ench-[Rr]ev: //p'`,
      );
      if (header.trim() !== String(vhostRev(i, changed)))
        problems.push(`${appDomain(i)} sends X-Bench-Rev "${header.trim()}", expected ${vhostRev(i, changed)}`);
    }
  }
  const owned = await sh(
    m,
    `runuser -u postgres -- psql -XtAq -c "select count(*) from pg_database d join pg_roles r on r.oid = d.datdba where d.datname ~ '^app_[0-9]+$' and r.rolname = d.datname"`,
  );
  if (Number(owned) !== apps) problems.push(`${owned.trim()} of ${apps} databases app_i owned by role app_i`);
  const table = JSON.parse(await sh(m, 'nft -j list table inet hostkit')) as { nftables: { rule?: { expr: unknown[] } }[] };
  const ports = new Set<number>();
  let policyDrop = false;
  for (const item of table.nftables) {
    const chain = (item as { chain?: { policy?: string } }).chain;
    if (chain?.policy === 'drop') policyDrop = true;
    for (const e of item.rule?.expr ?? []) {
      const right = (e as { match?: { left?: { payload?: { field?: string } }; right?: unknown } }).match;
      if (right?.left?.payload?.field === 'dport' && typeof right.right === 'number') ports.add(right.right);
    }
  }
  if (!policyDrop) problems.push('the input chain of inet hostkit does not have policy drop');
  const missing = [80, 443, ...Array.from({ length: apps }, (_, k) => appPort(k + 1))].filter((p) => !ports.has(p));
  if (missing.length > 0) problems.push(`firewall table lacks TCP ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`);
  // app-2's running process has the environment of this variant.
  const environ = await sh(m, `tr '\\0' '\\n' < /proc/$(systemctl show --value --property=MainPID hk-app-2.service)/environ | sed -n 's/^APP_NAME=//p'`);
  if (environ.trim() !== app2Name(changed)) problems.push(`app-2 runs with APP_NAME=${environ.trim()}, expected ${app2Name(changed)}`);
  return problems;
}

// The services are Type=simple: systemd calls them active when they are started, and
// python needs a moment more to listen. Checked again until every check passes, for at
// most 30 s; how long that took is reported with the check.
async function converged(m: TestHost, apps: number, changed: boolean, sites: boolean): Promise<{ problems: string[]; waitedS: number }> {
  const started = performance.now();
  for (;;) {
    const problems = await verifyConverged(m, apps, changed, sites);
    const waitedS = (performance.now() - started) / 1000;
    if (problems.length === 0 || waitedS > 30) return { problems, waitedS };
    await new Promise((r) => setTimeout(r, 500));
  }
}

function diffIds(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...before].filter(([u, id]) => after.get(u) !== id).map(([u]) => u);
}

async function commit(repo: string, message: string): Promise<void> {
  const env = { GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.test', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.test' };
  await execa('git', ['add', '-A'], { cwd: repo });
  await execa('git', ['commit', '-q', '-m', message], { cwd: repo, env });
}

/** Wall seconds of the alternated runs, by step and build. */
type Compared = Record<'noop' | 'change', Record<Side, number[]>>;

/** What the baseline checkout needs bound into the host: itself, and its node_modules where a worktree links them from. */
async function baselineBinds(dir: string): Promise<{ hostPath: string; containerPath: string }[]> {
  const binds = [{ hostPath: path.resolve(dir), containerPath: INSIDE_BASELINE }];
  const modules = path.join(dir, 'node_modules');
  if ((await lstat(modules)).isSymbolicLink()) {
    const target = await realpath(modules);
    binds.push({ hostPath: target, containerPath: target });
  }
  return binds;
}

// The baseline's and this build's noop and change runs, alternated on the booted host.
async function compare(m: TestHost, work: string, repo: string, apps: number, sites: boolean): Promise<{ compared: Compared; changed: boolean }> {
  const compared: Compared = { noop: { new: [], baseline: [] }, change: { new: [], baseline: [] } };
  let changed = true;
  for (let r = 0; r < rounds; r++) {
    const order: Side[] = r % 2 === 0 ? ['baseline', 'new'] : ['new', 'baseline'];
    for (const side of order) {
      const noop = await inside(m, work, 'noop', apps, side);
      if (noop.changes !== 0) throw new Error(`N=${apps}: the ${side} build's noop applied ${noop.changes} change(s)`);
      compared.noop[side].push(noop.wallS);
    }
    for (const side of order) {
      changed = !changed;
      await writeScenario(repo, { apps, changed, sites });
      await commit(repo, `bench: round ${r + 1}, ${side} build, ${changed ? 'changed' : 'base'}`);
      const change = await inside(m, work, 'change', apps, side);
      if (change.changes === 0) throw new Error(`N=${apps}: the ${side} build applied nothing for a changed scenario`);
      compared.change[side].push(change.wallS);
    }
    process.stderr.write(
      `  N=${apps} round ${r + 1}/${rounds}: noop ${order.map((s) => `${s} ${compared.noop[s].at(-1)!.toFixed(2)} s`).join(', ')}; change ${order.map((s) => `${s} ${compared.change[s].at(-1)!.toFixed(2)} s`).join(', ')}\n`,
    );
  }
  return { compared, changed };
}

async function runSize(apps: number, sites: boolean, delayMs: number): Promise<{ rows: Row[]; checks: string[]; compared?: Compared; delay?: string }> {
  const work = await mkdtemp(path.join('/var/tmp', `hostkit-converge-${apps}-`));
  const where = overSsh ? `N=${apps} over SSH +${delayMs} ms` : `N=${apps}`;
  const repo = path.join(work, 'repo');
  await mkdir(repo);
  await writeFile(path.join(work, 'rss.mjs'), RSS_PRELOAD);
  await writeScenario(repo, { apps, changed: false, sites });
  await execa('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  await commit(repo, 'bench: base');
  if (values.profile) await mkdir(path.join(work, 'prof'));
  const m = await bootHost({
    hostname: BENCH_HOST,
    bootTimeoutMs: 180_000,
    bindReadOnly: [{ hostPath: worktree, containerPath: INSIDE_CODE }, ...(values.baseline ? await baselineBinds(values.baseline) : [])],
    bind: [{ hostPath: work, containerPath: INSIDE_WORK }],
  });
  const rows: Row[] = [];
  const checks: string[] = [];
  let compared: Compared | undefined;
  let access: SshAccess | undefined;
  let delay: string | undefined;
  const fail = (what: string, problems: string[]) => {
    if (problems.length > 0) throw new Error(`${where}, ${what}:\n  ${problems.join('\n  ')}`);
    checks.push(`${where} ${what}: ok`);
  };
  try {
    await preparePostgres(m);
    let hostkit: RunStep = (step, side) => inside(m, work, step, apps, side);
    if (overSsh) {
      access = await sshInto(m);
      const link = await addDelay(m, access, work, delayMs);
      delay = link.how;
      hostkit = (step) => sshStep(m, work, link.configFile, step, apps, delayMs);
    }
    const record = (r: Row) => {
      const { report: _, ...row } = r as Row & { report?: unknown };
      rows.push(row);
      const ssh = r.ssh ? `  ${r.ssh.requests} requests, ${r.ssh.roundTrips} round trips, ${r.ssh.processes} ssh processes` : '';
      process.stderr.write(`  ${where} ${r.step.padEnd(6)} ${r.wallS.toFixed(2)} s  ${r.peakRssMB.toFixed(0)} MB  ${r.changes} changes${ssh}\n`);
    };

    record(await hostkit('apply'));
    const afterApply = await converged(m, apps, false, sites);
    fail(`converged after apply (all checks passed ${afterApply.waitedS.toFixed(1)} s after hostkit exited)`, afterApply.problems);

    const before = await invocationIds(m, apps);
    const reloadsBefore = sites ? await nginxReloads(m) : 0;
    const noop = await hostkit('noop');
    record(noop);
    const afterNoop = await invocationIds(m, apps);
    fail('noop reports 0 changes and restarts nothing', [
      ...(noop.changes !== 0 ? [`noop applied ${noop.changes} change(s): ${JSON.stringify(noop.report).slice(0, 1000)}`] : []),
      ...diffIds(before, afterNoop).map((u) => `${u} restarted by the noop`),
      ...(sites && (await nginxReloads(m)) !== reloadsBefore ? ['nginx reloaded by the noop'] : []),
    ]);

    const check = await hostkit('check');
    record(check);
    fail('check reports 0 changes', check.changes !== 0 ? [`dry run lists ${check.changes} change(s)`] : []);

    await writeScenario(repo, { apps, changed: true, sites });
    await commit(repo, 'bench: changed');
    const reloadsBeforeChange = sites ? await nginxReloads(m) : 0;
    record(await hostkit('change'));
    const afterChange = await converged(m, apps, true, sites);
    fail(`converged after change (all checks passed ${afterChange.waitedS.toFixed(1)} s after hostkit exited)`, afterChange.problems);
    const restarted = diffIds(afterNoop, await invocationIds(m, apps));
    fail('change restarts only app-2', restarted.join(',') === 'hk-app-2.service' ? [] : [`restarted: ${restarted.join(', ') || 'none'}`]);
    if (sites) {
      const reloads = (await nginxReloads(m)) - reloadsBeforeChange;
      fail('change reloads nginx once', reloads === 1 ? [] : [`nginx reloaded ${reloads} times`]);
    }
    if (values.baseline) {
      const result = await compare(m, work, repo, apps, sites);
      compared = result.compared;
      const after = await converged(m, apps, result.changed, sites);
      fail(`converged after ${rounds} alternated rounds of noop and change with the baseline build`, after.problems);
    }
    if (values.profile) {
      await execa('cp', ['-r', path.join(work, 'prof', '.'), values.profile]);
    }
  } finally {
    await access?.dispose();
    await m.stop();
    await rm(work, { recursive: true, force: true });
  }
  return { rows, checks, ...(compared ? { compared } : {}), ...(delay ? { delay } : {}) };
}

const sites = await sitesEnabled();
if (values.profile) await mkdir(values.profile, { recursive: true });
const load = () => os.loadavg().map((l) => l.toFixed(2));
const loadBefore = load();
process.stderr.write(`hostkit bench:converge  N = ${sizes.join(', ')}; nginx sites ${sites ? 'on' : 'off (no site driver)'}; load ${loadBefore.join(' ')}\n`);
const rows: Row[] = [];
const checks: string[] = [];
const comparisons: { apps: number; compared: Compared }[] = [];
const delayNotes = new Set<string>();
for (const n of sizes) {
  for (const d of delays) {
    const result = await runSize(n, sites, d);
    rows.push(...result.rows);
    checks.push(...result.checks);
    if (result.compared) comparisons.push({ apps: n, compared: result.compared });
    if (result.delay) delayNotes.add(result.delay);
  }
}
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const comparisonLines = comparisons.flatMap(({ apps, compared }) =>
  (['noop', 'change'] as const).map((step) => {
    const [b, n] = [median(compared[step].baseline), median(compared[step].new)];
    return `  ${String(apps).padStart(5)}  ${step.padEnd(6)}  baseline ${b.toFixed(2)} s (min ${Math.min(...compared[step].baseline).toFixed(2)})  this build ${n.toFixed(2)} s (min ${Math.min(...compared[step].new).toFixed(2)})  ${(((n - b) / b) * 100).toFixed(1)}%`;
  }),
);
// A row over SSH, then where its time and round trips went.
function sshLines(r: Row): string[] {
  const s = r.ssh!;
  const parts = Object.entries(s.phases).map(([name, p]) => `${name} ${(p.ms / 1000).toFixed(2)} s/${p.roundTrips}`);
  return [
    `  ${String(r.apps).padStart(5)} ${`${r.delayMs} ms`.padStart(6)}  ${r.step.padEnd(6)} ${r.wallS.toFixed(2).padStart(8)} ${r.peakRssMB.toFixed(0).padStart(13)} ${String(r.changes).padStart(9)} ${String(s.requests).padStart(9)} ${String(s.roundTrips).padStart(12)} ${String(s.processes).padStart(14)}`,
    `                 s/round trips: ${parts.join(', ')}`,
  ];
}
const loadAfter = load();
const date = new Date().toISOString();
const lines = [
  `hostkit bench:converge  ${date}, ${os.availableParallelism()} cores, node ${process.version} (the hostkit runs: node_modules/node), load ${loadBefore.join(' ')} -> ${loadAfter.join(' ')}`,
  overSsh
    ? `  nginx sites: ${sites ? 'on' : 'off (no site driver in this build)'}; each step is one process on this machine driving the host over SSH (node ${NODE_FLAGS.join(' ')}; wall includes its start-up and the connection; peak RSS is its own)`
    : `  nginx sites: ${sites ? 'on' : 'off (no site driver in this build)'}; each step is one whole hostkit process inside the host (node ${NODE_FLAGS.join(' ')}; wall includes nsenter)`,
  ...[...delayNotes].map((d) => `  delay: ${d}`),
  overSsh
    ? '      N  delay  step     wall s   peak RSS MB   changes  requests  round trips  ssh processes'
    : '      N  step     wall s   peak RSS MB   changes',
  ...rows.flatMap((r) =>
    r.ssh
      ? sshLines(r)
      : [
          `  ${String(r.apps).padStart(5)}  ${r.step.padEnd(6)} ${r.wallS.toFixed(2).padStart(8)} ${r.peakRssMB.toFixed(0).padStart(13)} ${String(r.changes).padStart(9)}`,
        ],
  ),
  ...checks.map((c) => `  check ${c}`),
  ...(comparisons.length > 0 ? [`  alternated with the baseline ${values.baseline} (${rounds} rounds, medians of wall s):`, ...comparisonLines] : []),
  '',
];
process.stdout.write(lines.join('\n'));
const jsonPath = values.json ?? path.join(worktree, 'bench-results', `converge-${date.slice(0, 19).replace(/:/g, '')}.json`);
await mkdir(path.dirname(jsonPath), { recursive: true });
await writeFile(
  jsonPath,
  JSON.stringify(
    {
      benchmark: 'converge',
      date,
      cores: os.availableParallelism(),
      load: { before: loadBefore, after: loadAfter },
      sites,
      target: values.target,
      ...(overSsh ? { delays, delayWith: [...delayNotes] } : {}),
      rows,
      checks,
      ...(comparisons.length > 0 ? { baseline: values.baseline, rounds, comparisons } : {}),
    },
    null,
    1,
  ) + '\n',
);
process.stdout.write(`results: ${jsonPath}\n`);
