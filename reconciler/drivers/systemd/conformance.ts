import { fakeSystemd } from '../../../test/support/fake-systemd.js';
import { many, type ConformanceFixture } from '../../../test/support/conformance.js';
import { deployFixture } from './deploy/conformance.js';
import { UNIT_DIR } from './render.js';

// Services that keep running (sleep) and timers with their oneshot services, from Unit primitives.
const unit = (name: string) => `hk-${name}.service`;
const wanted = (target: string, name: string) => `${UNIT_DIR}/${target}.wants/${name}`;

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'unit',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Unit',
        name: `ck-${set}-u${i}`,
        spec: { command: ['/bin/sleep', 'infinity'], environment: { CK_VERSION: change ? '2' : '1' } },
      })),
    paths: ({ set, count }) =>
      Array.from({ length: count }, (_, i) => unit(`ck-${set}-u${i + 1}`)).flatMap((u) => [`${UNIT_DIR}/${u}`, wanted('multi-user.target', u)]),
    fake: (host) => (fakeSystemd(host), {}),
  },
  {
    kind: 'timer',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Unit',
        name: `ck-${set}-t${i}`,
        spec: { command: ['/bin/true'], schedule: change ? '0 4 * * *' : '0 3 * * *' },
      })),
    paths: ({ set, count }) =>
      Array.from({ length: count }, (_, i) => `hk-ck-${set}-t${i + 1}`).flatMap((n) => [
        `${UNIT_DIR}/${n}.service`,
        `${UNIT_DIR}/${n}.timer`,
        wanted('timers.target', `${n}.timer`),
      ]),
    fake: (host) => (fakeSystemd(host), {}),
  },
  deployFixture,
];
