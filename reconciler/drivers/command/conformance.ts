import path from 'node:path';
import { many, type ConformanceFixture, type ManifestDoc } from '../../../test/support/conformance.js';
import type { FakeHost } from '../../hosts/fake.js';

// Lifecycle commands of a static project: each leaves a marker file in the project's directory, its down command
// removes it. The project without them (its account, directory and a file) is what they need.
const project = (set: string) => `ck-${set}-app`;
const directory = (set: string) => `/srv/${project(set)}`;

function app(set: string, lifecycle?: unknown[]): ManifestDoc {
  return {
    kind: 'Project',
    name: project(set),
    spec: { runtime: 'static', files: [{ name: 'app.conf', content: 'mode=static\n' }], ...(lifecycle ? { lifecycle } : {}) },
  };
}

/** systemd-run on the fake host: runs `touch` and `rm -f` as the unit's user in its working directory. */
function fakeSystemdRun(host: FakeHost): void {
  host.onExec((call, h) => {
    if (call.file !== 'systemd-run') return undefined;
    const property = (name: string) => call.args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
    const [program, ...args] = call.args.slice(call.args.indexOf('--') + 1);
    const user = (h.text('/etc/passwd') ?? '').split('\n').find((l) => l.startsWith(`${property('User')}:`));
    if (!user) return { exitCode: 217, stdout: '', stderr: `Failed to determine user credentials: No such process\nFinished with result: exit-code\n` };
    const [uid, gid] = user.split(':').slice(2, 4).map(Number);
    for (const file of args.filter((a) => !a.startsWith('-')).map((a) => path.posix.resolve(property('WorkingDirectory')!, a))) {
      if (program === '/usr/bin/touch' && !h.text(file)) h.seedFile(file, '', { uid: uid!, gid: gid!, mode: 0o644 });
      else if (program === '/usr/bin/rm') void h.remove(file);
    }
    return { exitCode: 0, stdout: '', stderr: '' };
  });
}

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'command',
    needs: (set) => [app(set)],
    declare: (set, count, changed) => [
      app(
        set,
        many(count, changed, (i, change) => ({
          kind: 'lifecycle',
          name: `c${i}`,
          spec: { command: ['/usr/bin/touch', `marker-${i}${change ? 'b' : ''}`], down: ['/usr/bin/rm', '-f', `marker-${i}${change ? 'b' : ''}`] },
        })).map((c) => ({ name: c.name, phase: 'before-start', ...c.spec })),
      ),
    ],
    paths: ({ set }) => [directory(set)],
    fake: (host) => (fakeSystemdRun(host), {}),
  },
];
