// npm run bench:release -- [--projects 100] [--noops 3] [--json FILE]   (root: boots a test host)
//
// Releases at scale, on a booted test host: N projects deploy a small Python
// app from bare git repositories on the host (file:///srv/bench.git, and for
// the last one, which has a build step, file:///srv/bench-built.git holding its
// dependencies too; both under the Host's allowedRoots), each pinned to a
// commit, each its own user, service and nginx site. Each step is one whole
// `hostkit reconcile` process run inside the host (wall time includes nsenter):
// - apply: the first deploy of all N (no target);
// - noop: apply again, with the repository moved away (0 changes, nothing
//   built, no source contacted; target under 1 s);
// - new commit, no build step: app-1 pinned to a new commit; the time from
//   starting `hostkit reconcile` until nginx serves the new version (target
//   under 3 s), only hk-app-1 restarted;
// - new commit, build step, warm cache: app-N pinned to a new commit with the
//   same dependency lock; the time until served, and the build's own seconds
//   beside its first (cold) build;
// - changed dependencies: app-N with a new lock, a cold build again, for scale.
// The build step is a model of a package manager's install (no package manager
// is in the test image): the dependencies pinned by requirements.lock (a tarball
// in the repository: Python's own library, 13 MB of source, standing in for
// packages) unpacked and byte-compiled into a cache keyed by the lock's sha256
// under $XDG_CACHE_HOME, then copied into the release's vendor/.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { hostHttpRequest } from '../../reconciler/hosts/http.js';
import { checkoutMounts } from '../host/harness.js';
import { bootHost, type TestHost } from '../host/machine.js';
import { HOST_MANIFEST, HOST_NAME } from '../host/reconcile.js';
import { gitCommitAll, writeRepo } from '../support/fixtures.js';
import { manifestYaml } from '../support/manifests.js';
import { releaseApp } from '../support/release-app.js';

const { values } = parseArgs({ options: { projects: { type: 'string', default: '100' }, noops: { type: 'string', default: '3' }, json: { type: 'string' } } });
const N = Number(values.projects);
const NOOPS = Number(values.noops);
if (!Number.isInteger(N) || N < 2) throw new Error(`Expected --projects N with N >= 2 (app-1 and app-N are changed), got ${values.projects}`);
if (!Number.isInteger(NOOPS) || NOOPS < 1) throw new Error(`Expected --noops N with N >= 1, got ${values.noops}`);

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
// The plain app's repository, and the built one's (with its dependencies).
const REPOS = { plain: { src: '/root/bench-src', bare: '/srv/bench.git' }, built: { src: '/root/bench-built', bare: '/srv/bench-built.git' } };
type Repo = keyof typeof REPOS;
const BASE_PORT = 9000;
const TARGETS = { noopS: 1, servedS: 3 };

const app = (i: number) => `app-${i}`;
const domain = (i: number) => `app-${i}.bench.test`;

// The model build step (see the top of this file): install the locked dependencies through the cache, then mark the build.
const BUILD = `import compileall, hashlib, os, shutil, tarfile
key = hashlib.sha256(open("requirements.lock", "rb").read()).hexdigest()[:16]
cache = os.path.join(os.environ["XDG_CACHE_HOME"], "deps", key)
if not os.path.isdir(cache):
    tmp = cache + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in sorted(os.listdir("deps")):
        with tarfile.open(os.path.join("deps", name)) as t:
            t.extractall(tmp)
    compileall.compile_dir(tmp, quiet=1)
    os.rename(tmp, cache)
shutil.copytree(cache, "vendor", symlinks=True)
open("build-info.txt", "w").write("built " + open("VERSION").read().strip())
`;

function project(i: number, commit: string): string {
  return manifestYaml({
    kind: 'Project',
    name: app(i),
    on: [HOST_NAME],
    spec: {
      runtime: 'python',
      source: { git: { url: `file://${REPOS[i === N ? 'built' : 'plain'].bare}`, ref: commit } },
      ...(i === N ? { build: [{ command: ['/usr/bin/python3', 'build.py'] }] } : {}),
      service: { command: ['/usr/bin/python3', 'app.py'], port: BASE_PORT + i },
      domains: [{ name: domain(i), tls: 'none' }],
    },
  });
}

/** The config repository at a new commit: app-1 at `first`, app-2 .. app-N-1 at `plain`, app-N at `built`. */
async function configure(repo: string, commits: { first: string; plain: string; built: string }): Promise<void> {
  const files: Record<string, string> = { 'hosts/test-host.yaml': HOST_MANIFEST };
  for (let i = 1; i <= N; i++) files[`projects/${app(i)}.yaml`] = project(i, i === 1 ? commits.first : i === N ? commits.built : commits.plain);
  await writeRepo(files, repo);
  await gitCommitAll(repo, `bench: ${JSON.stringify(commits)}`);
}

// Python's own library as the locked dependencies' source, packed the same way every time (one blob in git).
const PACK_DEPENDENCIES = [
  'tar --sort=name --mtime=@0 --owner=0 --group=0 -C /usr/lib/python3.11',
  ...['test', 'tests', '__pycache__', 'idlelib', 'tkinter', 'turtledemo', 'site-packages', 'dist-packages', 'config-3.11*', 'lib2to3', 'ensurepip'].map(
    (d) => `--exclude='${d}'`,
  ),
  '-cf - . | gzip -n',
].join(' ');

/** A commit of the app at `version` in `repo` (the built one with its dependencies locked as `lock`), pushed; its id. */
async function push(m: TestHost, repo: Repo, version: string, lock = 'deps-1'): Promise<string> {
  const { src, bare } = REPOS[repo];
  const put = (name: string, text: string) => m.host.writeFile(`${src}/${name}`, text, { uid: 0, gid: 0, mode: 0o644 });
  await put('VERSION', `${version}\n`);
  await put('app.py', releaseApp(version));
  if (repo === 'built') {
    await put('build.py', BUILD);
    await put('requirements.lock', `${lock}\n`);
    await m.exec('bash', ['-c', `mkdir -p ${src}/deps && ${PACK_DEPENDENCIES} > ${src}/deps/packages.tar.gz`]);
  }
  const git = (...args: string[]) => m.exec('git', ['-C', src, '-c', 'user.name=bench', '-c', 'user.email=bench@bench', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', `app ${version} (${lock})`);
  await git('push', '-q', bare, 'HEAD:main');
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

/** One whole `hostkit reconcile` inside the host: wall seconds and the changes it applied. */
async function reconcile(m: TestHost, repo: string): Promise<{ wallS: number; changes: number }> {
  const started = performance.now();
  const r = await m.host.exec(NODE, [...NODE_FLAGS, CLI, 'reconcile', '--repo', repo, '--host', HOST_NAME, '-o', 'json'], {
    env: { NO_COLOR: '1' },
    timeoutMs: 900_000,
  });
  const wallS = (performance.now() - started) / 1000;
  if (r.exitCode !== 0) throw new Error(`hostkit reconcile exited ${r.exitCode}:\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`);
  const report = JSON.parse(r.stdout) as { applied?: unknown[] };
  return { wallS, changes: report.applied?.length ?? 0 };
}

async function body(m: TestHost, i: number): Promise<string | undefined> {
  try {
    return (await hostHttpRequest(m.host, { port: 80, path: '/', hostHeader: domain(i), timeoutMs: 1000 })).body;
  } catch {
    return undefined;
  }
}

/**
 * Start a reconcile and poll app-i through nginx every 20 ms from the moment it starts:
 * seconds until `want` is served, and the reconcile's own wall time and changes.
 */
async function servedAfter(m: TestHost, repo: string, i: number, want: string): Promise<{ servedS: number; wallS: number; changes: number }> {
  const started = performance.now();
  const run = reconcile(m, repo);
  let servedS: number | undefined;
  let done = false;
  void run.finally(() => (done = true)).catch(() => undefined);
  for (;;) {
    if ((await body(m, i)) === want) {
      servedS = (performance.now() - started) / 1000;
      break;
    }
    if (done && performance.now() - started > 60_000) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const result = await run;
  if (servedS === undefined) throw new Error(`${domain(i)} never served ${JSON.stringify(want)}`);
  return { servedS, ...result };
}

async function sh(m: TestHost, script: string): Promise<string> {
  return (await m.exec('bash', ['-c', script])).stdout;
}

async function invocationIds(m: TestHost): Promise<Map<string, string>> {
  const units = Array.from({ length: N }, (_, k) => `hk-${app(k + 1)}.service`);
  const out = await sh(m, `systemctl show --property=Id,InvocationID ${units.join(' ')}`);
  return new Map(out.split(/\n\s*\n/).map((b) => [/^Id=(.*)$/m.exec(b)?.[1] ?? '', /^InvocationID=(.*)$/m.exec(b)?.[1] ?? '']));
}

function restartedSince(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...before].filter(([unit, id]) => after.get(unit) !== id).map(([unit]) => unit);
}

/** The build seconds the marker of app-N's current release records. */
async function buildSeconds(m: TestHost): Promise<number> {
  const marker = (await m.host.readFile(`/srv/${app(N)}/current/.hostkit-release.json`))!.toString();
  return (JSON.parse(marker) as { buildSeconds: number }).buildSeconds;
}

const releaseCount = async (m: TestHost) => Number((await sh(m, 'ls -d /srv/app-*/releases/* | wc -l')).trim());
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => os.loadavg().map((l) => l.toFixed(2));

const work = await mkdtemp(path.join('/var/tmp', 'hostkit-bench-release-'));
const repo = path.join(work, 'config');
await mkdir(repo);
const loadBefore = load();
process.stderr.write(`hostkit bench:release  N = ${N}; load ${loadBefore.join(' ')}\n`);
const m = await bootHost({ bootTimeoutMs: 180_000, bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: work }] });
const checks: string[] = [];
const check = (what: string, problems: string[]) => {
  if (problems.length > 0) throw new Error(`${what}:\n  ${problems.join('\n  ')}`);
  checks.push(`${what}: ok`);
};
try {
  for (const { src, bare } of Object.values(REPOS)) {
    await m.exec('git', ['init', '-q', '-b', 'main', src]);
    await m.exec('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  }
  const plain1 = await push(m, 'plain', 'v1');
  const built1 = await push(m, 'built', 'v1');

  await configure(repo, { first: plain1, plain: plain1, built: built1 });
  const apply = await reconcile(m, repo);
  process.stderr.write(`  apply   ${apply.wallS.toFixed(2)} s, ${apply.changes} changes\n`);
  const wanted = (i: number, version: string) => `${version} ${i === N ? `built ${version}` : 'not built'}\n`;
  const unserved = async () => {
    const missing: string[] = [];
    for (let i = 1; i <= N; i++) if ((await body(m, i)) !== wanted(i, 'v1')) missing.push(domain(i));
    return missing;
  };
  let missing = await unserved();
  for (let t = 0; t < 60 && missing.length > 0; t++) {
    await new Promise((r) => setTimeout(r, 500));
    missing = await unserved();
  }
  check(
    `after apply every one of the ${N} sites serves v1 through nginx`,
    missing.map((d) => `${d} does not serve v1`),
  );
  const coldBuildS = await buildSeconds(m);

  // The noop, with the repository moved away: a pinned commit needs no source.
  const idsBefore = await invocationIds(m);
  const releasesBefore = await releaseCount(m);
  const noops: { wallS: number; changes: number }[] = [];
  for (const { bare } of Object.values(REPOS)) await m.exec('mv', [bare, `${bare}.away`]);
  try {
    for (let k = 0; k < NOOPS; k++) {
      noops.push(await reconcile(m, repo));
      process.stderr.write(`  noop    ${noops.at(-1)!.wallS.toFixed(2)} s\n`);
    }
  } finally {
    for (const { bare } of Object.values(REPOS)) await m.exec('mv', [`${bare}.away`, bare]);
  }
  const idsAfterNoop = await invocationIds(m);
  check('the noops apply 0 changes, restart nothing, build nothing, with the repository moved away', [
    ...noops.filter((n) => n.changes !== 0).map((n) => `a noop applied ${n.changes} change(s)`),
    ...restartedSince(idsBefore, idsAfterNoop).map((u) => `${u} restarted`),
    ...((await releaseCount(m)) !== releasesBefore ? ['a release was built'] : []),
  ]);

  // A new commit of app-1 (no build step).
  const plain2 = await push(m, 'plain', 'v2');
  await configure(repo, { first: plain2, plain: plain1, built: built1 });
  const moved = await servedAfter(m, repo, 1, wanted(1, 'v2'));
  process.stderr.write(`  commit  served ${moved.servedS.toFixed(2)} s after start; reconcile ${moved.wallS.toFixed(2)} s, ${moved.changes} changes\n`);
  const idsAfterMove = await invocationIds(m);
  check(
    'the new commit of app-1 restarts hk-app-1 only',
    restartedSince(idsAfterNoop, idsAfterMove).join(',') === 'hk-app-1.service'
      ? []
      : [`restarted: ${restartedSince(idsAfterNoop, idsAfterMove).join(', ') || 'none'}`],
  );

  // A new commit for app-N, whose build step finds its dependencies (the same lock) cached.
  const built2 = await push(m, 'built', 'v2');
  await configure(repo, { first: plain2, plain: plain1, built: built2 });
  const warm = await servedAfter(m, repo, N, wanted(N, 'v2'));
  const warmBuildS = await buildSeconds(m);
  process.stderr.write(`  warm    served ${warm.servedS.toFixed(2)} s after start; build ${warmBuildS.toFixed(2)} s (cold ${coldBuildS.toFixed(2)} s)\n`);
  check(
    `the warm rebuild of ${app(N)} restarts hk-${app(N)} only`,
    restartedSince(idsAfterMove, await invocationIds(m)).join(',') === `hk-${app(N)}.service` ? [] : ['other units restarted'],
  );

  // New dependencies: the cache has nothing for the new lock.
  const built3 = await push(m, 'built', 'v2.1', 'deps-2');
  await configure(repo, { first: plain2, plain: plain1, built: built3 });
  const cold = await servedAfter(m, repo, N, wanted(N, 'v2.1'));
  const newDepsBuildS = await buildSeconds(m);
  process.stderr.write(`  deps    served ${cold.servedS.toFixed(2)} s after start; build ${newDepsBuildS.toFixed(2)} s\n`);

  const loadAfter = load();
  const date = new Date().toISOString();
  const noopMedian = median(noops.map((n) => n.wallS));
  const result = {
    benchmark: 'release',
    date,
    projects: N,
    cores: os.availableParallelism(),
    load: { before: loadBefore, after: loadAfter },
    applyS: apply.wallS,
    applyChanges: apply.changes,
    noopS: noops.map((n) => n.wallS),
    noopMedianS: noopMedian,
    newCommit: moved,
    warmBuild: { ...warm, buildS: warmBuildS, coldBuildS },
    newDependencies: { ...cold, buildS: newDepsBuildS },
    targets: TARGETS,
    met: { noop: noopMedian < TARGETS.noopS, newCommitServed: moved.servedS < TARGETS.servedS },
    checks,
  };
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  process.stdout.write(
    [
      `hostkit bench:release  ${date}, N = ${N} projects (commit-pinned git sources, file:// repositories on the host), ${result.cores} cores, node ${process.version}, load ${loadBefore.join(' ')} -> ${loadAfter.join(' ')}`,
      '  each step is one whole hostkit reconcile inside the host (wall includes nsenter); served = nginx answers the new version',
      `  apply (first deploy)                      ${apply.wallS.toFixed(2)} s, ${apply.changes} changes`,
      `  noop (repository moved away), median      ${noopMedian.toFixed(2)} s of ${noops.map((n) => n.wallS.toFixed(2)).join(', ')}   target < ${TARGETS.noopS} s: ${verdict(result.met.noop)}`,
      `  new commit, no build: served after         ${moved.servedS.toFixed(2)} s (reconcile ${moved.wallS.toFixed(2)} s, ${moved.changes} changes)   target < ${TARGETS.servedS} s: ${verdict(result.met.newCommitServed)}`,
      `  new commit, build, warm cache: served after ${warm.servedS.toFixed(2)} s (reconcile ${warm.wallS.toFixed(2)} s; build ${warmBuildS.toFixed(2)} s, its first cold build ${coldBuildS.toFixed(2)} s)`,
      `  new dependencies (cold cache): served after ${cold.servedS.toFixed(2)} s (reconcile ${cold.wallS.toFixed(2)} s; build ${newDepsBuildS.toFixed(2)} s)`,
      ...checks.map((c) => `  check ${c}`),
      JSON.stringify(result),
      '',
    ].join('\n'),
  );
  if (values.json) {
    await mkdir(path.dirname(path.resolve(values.json)), { recursive: true });
    await writeFile(values.json, JSON.stringify(result, null, 1) + '\n');
  }
} finally {
  await m.stop();
  await rm(work, { recursive: true, force: true });
}
