import type { ConformanceFixture } from '../../../test/support/conformance.js';

// `count` apt sources of the Host manifest, each with an inline key (the first one
// changed: another suite). Nothing is installed from them: they are written, never fetched.
const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdAck\n=ck00\n-----END PGP PUBLIC KEY BLOCK-----';
const name = (set: string, i: number) => `ck-${set}-s${i}`;

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'aptsource',
    declare: (set, count, changed) => [
      {
        kind: 'Host',
        name: '',
        spec: {
          aptSources: Array.from({ length: count }, (_, i) => ({
            name: name(set, i + 1),
            uris: ['http://deb.hostkit-ck.invalid/debian'],
            suites: [changed && i === 0 ? 'trixie' : 'bookworm'],
            components: ['main'],
            signedBy: { key: KEY },
          })),
        },
      },
    ],
    paths: ({ set, count }) =>
      Array.from({ length: count }, (_, i) => [
        `/etc/apt/sources.list.d/hostkit-${name(set, i + 1)}.sources`,
        `/etc/apt/keyrings/hostkit-${name(set, i + 1)}.asc`,
      ]).flat(),
    fake: () => ({}),
  },
];
