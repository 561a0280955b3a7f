import { directoryFor, many, type ConformanceFixture } from '../../../test/support/conformance.js';

// Env files with a plain value and a secret, in a directory that exists before them.
export const fixtures: ConformanceFixture[] = [
  {
    kind: 'envfile',
    needs: (set) => directoryFor(set, 'env').needs(),
    declare: (set, count, changed) => {
      const dir = directoryFor(set, 'env');
      return [
        ...dir.needs(),
        ...many(count, changed, (i, change) => ({
          kind: 'EnvFile',
          name: `ck-${set}-e${i}`,
          spec: {
            path: `${dir.path}/e${i}.env`,
            owner: 'root',
            group: 'root',
            environment: { INDEX: `${i}${change ? '-changed' : ''}` },
            secrets: { TOKEN: { env: 'CK_TOKEN' } },
          },
        })),
      ];
    },
    paths: ({ set }) => [directoryFor(set, 'env').path],
    env: { CK_TOKEN: 'conformance-token-7f3e' },
    fake: () => ({}),
  },
];
