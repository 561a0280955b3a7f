import { directoryFor, many, type ConformanceFixture } from '../../../test/support/conformance.js';

// Files in a directory that exists before them.
export const fixtures: ConformanceFixture[] = [
  {
    kind: 'file',
    needs: (set) => directoryFor(set, 'files').needs(),
    declare: (set, count, changed) => {
      const dir = directoryFor(set, 'files');
      return [
        ...dir.needs(),
        ...many(count, changed, (i, change) => ({
          kind: 'File',
          name: `ck-${set}-f${i}`,
          spec: { path: `${dir.path}/f${i}.conf`, owner: 'root', group: 'root', mode: '0640', content: `value=${i}${change ? ' changed' : ''}\n` },
        })),
      ];
    },
    paths: ({ set }) => [directoryFor(set, 'files').path],
    fake: () => ({}),
  },
];
