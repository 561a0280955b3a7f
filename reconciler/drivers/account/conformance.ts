import { idsOf, many, type ConformanceFixture } from '../../../test/support/conformance.js';
import type { FakeHost } from '../../hosts/fake.js';
import type { Host } from '../../hosts/types.js';
import { testKey } from '../../../test/support/ssh-keys.js';

// Each a project's own account (declared in projects/): a project may not adopt an account HostKit did not create for it.
const user = (set: string, i: number) => `ck-${set}-${i}`;
const ids = (set: string, count: number) => idsOf('account', count, (i) => user(set, i));
// The account database HostKit reads (useradd also keeps /etc/shadow and backups, which it never reads).
const DATABASE = ['/etc/passwd', '/etc/group'];
const KEPT = 'README, Safe apply: a rollback keeps "accounts, directories and databases"; files on the host may belong to them';

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'account',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Account',
        name: user(set, i),
        project: user(set, i),
        spec: { home: `/srv/${user(set, i)}`, shell: change ? '/bin/sh' : '/usr/sbin/nologin' },
      })),
    paths: () => DATABASE,
    fake: () => ({}),
    rollback: {
      create: { reason: KEPT, resources: ({ set, count }) => ids(set, count), paths: () => DATABASE, asApplied: true },
    },
  },
  {
    // Host-level accounts with keys, their homes inside one directory: the driver makes each home and .ssh.
    kind: 'authorizedkeys',
    needs: (set) => KEYS_NEEDS(set),
    declare: (set, count, changed) => [
      ...KEYS_NEEDS(set),
      ...many(count, changed, (i, change) => ({
        kind: 'Account',
        name: `ck-${set}-k${i}`,
        spec: { home: `${keysRoot(set)}/k${i}`, authorizedKeys: [testKey(`ck-${set}-k${i}${change ? '-new' : ''}`)] },
      })),
    ],
    paths: ({ set }) => [keysRoot(set), ...DATABASE],
    fake: () => ({}),
    rollback: {
      create: { reason: KEPT, resources: ({ set, count }) => idsOf('account', count, (i) => `ck-${set}-k${i}`), paths: () => DATABASE, asApplied: true },
    },
  },
  {
    kind: 'sudoers',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Account',
        name: `ck-${set}-s${i}`,
        spec: { sudo: [{ commands: ['/usr/bin/systemctl', '/usr/bin/journalctl'], password: change }] },
      })),
    prepare: visudoStandIn,
    paths: ({ set, count }) => [...Array.from({ length: count }, (_, i) => `/etc/sudoers.d/hostkit-ck-${set}-s${i + 1}`), ...DATABASE],
    fake: (host) => {
      host.onExec((call) => (call.file === 'visudo' ? { exitCode: 0, stdout: `${call.args.at(-1)}: parsed OK\n`, stderr: '' } : undefined));
      return {};
    },
    rollback: {
      create: { reason: KEPT, resources: ({ set, count }) => idsOf('account', count, (i) => `ck-${set}-s${i}`), paths: () => DATABASE, asApplied: true },
    },
  },
];

const keysRoot = (set: string) => `/srv/ck-${set}-keys`;
const KEYS_NEEDS = (set: string) => [{ kind: 'Directory', name: `ck-${set}-keys`, spec: { path: keysRoot(set), owner: 'root', group: 'root', mode: '0755' } }];

// The test image has no sudo: there a stand-in visudo that accepts every file runs these checks, which are about
// HostKit's file (idempotence, rollback, kills). visudo's own refusals are tested in test/host/login.test.ts.
async function visudoStandIn(host: Host): Promise<void> {
  if (!(await host.stat('/etc/sudoers.d'))) await host.mkdir('/etc/sudoers.d', { uid: 0, gid: 0, mode: 0o755 });
  if ((host as Partial<FakeHost>).seedFile || (await host.stat('/usr/sbin/visudo'))) return;
  await host.writeFile('/usr/local/sbin/visudo', '#!/bin/sh\n# Stand-in for the conformance checks (no sudo in the test image).\nexec test -r "$3"\n', {
    uid: 0,
    gid: 0,
    mode: 0o755,
  });
}
