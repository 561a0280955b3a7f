import { idsOf, many, type ConformanceFixture } from '../../../test/support/conformance.js';
import { answerRmRf } from '../../../test/support/releases.js';
import type { Host } from '../../hosts/types.js';

// Static projects with a git source (a repository on the host, branch main) and no
// service: each is one release. The changed one gets a build step, so a new release.
const SRC = '/srv/ck-release-src';
const FAKE_COMMIT = 'c0ffee'.padEnd(40, '0');
const project = (set: string, i: number) => `ck-${set}-r${i}`;
const KEPT =
  "README (release): a rollback points current back (or removes it) and keeps the release it built, complete, for a later run to reuse or prune; the project's account and directory are kept as accounts and directories are";

// The repository the projects deploy, made once per host (a test host outlives the checks).
async function repository(host: Host): Promise<void> {
  if (await host.stat(`${SRC}/.git`)) return;
  const git = (...args: string[]) => host.exec('git', ['-C', SRC, '-c', 'user.name=ck', '-c', 'user.email=ck@ck', ...args]);
  for (const dir of ['/srv', SRC]) await host.mkdir(dir, { uid: 0, gid: 0, mode: 0o755 });
  await host.exec('git', ['init', '-q', '-b', 'main', SRC]);
  await host.writeFile(`${SRC}/index.html`, 'release fixture\n', { uid: 0, gid: 0, mode: 0o644 });
  await git('add', '-A');
  await git('commit', '-q', '-m', 'fixture');
}

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'release',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Project',
        name: project(set, i),
        spec: {
          runtime: 'static',
          source: { git: { url: `file://${SRC}`, ref: 'main' } },
          ...(change ? { build: [{ command: ['/bin/true'] }] } : {}),
        },
      })),
    prepare: repository,
    // None: a release's directory is named by the time it was built, so two applies never write the same
    // names; what is on the host is compared through the plans (current, the markers) instead.
    paths: () => [],
    // The fake host's git (run as the project's user) knows one branch, and a bare repository it makes has a HEAD;
    // every other command succeeds doing nothing.
    fake: (host) => {
      host.onExec((call) => (call.args.includes('ls-remote') ? { exitCode: 0, stdout: `${FAKE_COMMIT}\trefs/heads/main\n`, stderr: '' } : undefined));
      host.onExec((call, fake) => {
        if (!(call.args.includes('init') && call.args.includes('--bare'))) return undefined;
        const caches = fake.paths().filter((p) => /\/sources\/[^/]+$/.test(p) && !fake.paths().includes(`${p}/HEAD`));
        for (const cache of caches) fake.seedFile(`${cache}/HEAD`, 'ref: refs/heads/main\n');
        return { exitCode: 0, stdout: '', stderr: '' };
      });
      answerRmRf(host);
      return {};
    },
    rollback: {
      create: {
        reason: KEPT,
        resources: ({ set, count }) =>
          ['account', 'directory', 'release'].flatMap((kind) =>
            idsOf(kind, count, (i) => (kind === 'directory' ? `/srv/${project(set, i)}` : project(set, i))),
          ),
        paths: () => [],
        asApplied: false,
      },
      update: {
        reason: KEPT,
        resources: ({ set }) => idsOf('release', 1, (i) => project(set, i)),
        paths: () => [],
        asApplied: false,
      },
    },
  },
];
