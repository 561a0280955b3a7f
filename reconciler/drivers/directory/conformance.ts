import { directoryFor, idsOf, many, type ConformanceFixture } from '../../../test/support/conformance.js';

// Directories inside one that exists before them.
const sub = (set: string, i: number) => `${directoryFor(set, 'dirs').path}/d${i}`;
const KEPT = 'README, Safe apply: a rollback keeps "accounts, directories and databases"; directories may hold data';

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'directory',
    needs: (set) => directoryFor(set, 'dirs').needs(),
    declare: (set, count, changed) => [
      ...directoryFor(set, 'dirs').needs(),
      ...many(count, changed, (i, change) => ({
        kind: 'Directory',
        name: `ck-${set}-d${i}`,
        spec: { path: sub(set, i), owner: 'root', group: 'root', mode: change ? '0700' : '0750' },
      })),
    ],
    paths: ({ set }) => [directoryFor(set, 'dirs').path],
    fake: () => ({}),
    rollback: {
      create: {
        reason: KEPT,
        resources: ({ set, count }) => idsOf('directory', count, (i) => sub(set, i)),
        paths: ({ set, count }) => Array.from({ length: count }, (_, i) => sub(set, i + 1)),
        asApplied: true,
      },
      update: { reason: KEPT, resources: ({ set }) => idsOf('directory', 1, (i) => sub(set, i)), paths: ({ set }) => [sub(set, 1)], asApplied: true },
    },
  },
];
