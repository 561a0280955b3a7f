import { directoryFor, many, type ConformanceFixture } from '../../../test/support/conformance.js';

// Directories inside one that exists before them.
const sub = (set: string, i: number) => `${directoryFor(set, 'dirs').path}/d${i}`;

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
  },
];
