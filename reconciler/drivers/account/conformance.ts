import { idsOf, many, type ConformanceFixture } from '../../../test/support/conformance.js';

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
];
