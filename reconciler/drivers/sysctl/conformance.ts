import { many, type ConformanceFixture } from '../../../test/support/conformance.js';
import { FakeKernel } from '../../../test/support/fake-sysctl.js';

// One Sysctl manifest a key. Only net.* keys are writable in an nspawn test host,
// and these are harmless there: per-namespace IPv4 settings of all, default and lo.
const PARAMS = ['log_martians', 'accept_redirects', 'send_redirects', 'secure_redirects', 'accept_source_route', 'bootp_relay', 'proxy_arp'];
const KEYS = ['all', 'default', 'lo'].flatMap((dev) => PARAMS.map((p) => `net.ipv4.conf.${dev}.${p}`));
const file = (set: string, i: number) => `/etc/sysctl.d/90-hostkit-ck-${set}-s${i}.conf`;

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'sysctl',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({ kind: 'Sysctl', name: `ck-${set}-s${i}`, spec: { parameters: { [KEYS[i - 1]!]: change ? '0' : '1' } } })),
    // Every check starts from the same live values (on a real host the kernel outlives the checks).
    prepare: async (host) => {
      const r = await host.exec('sysctl', ['--quiet', '--write', ...KEYS.map((k) => `${k}=0`)]);
      if (r.exitCode !== 0) throw new Error(`sysctl --write failed: ${r.stderr}`);
    },
    paths: ({ set, count }) => Array.from({ length: count }, (_, i) => file(set, i + 1)),
    fake: (host) => {
      new FakeKernel(Object.fromEntries(KEYS.map((k) => [k, '0']))).install(host);
      return {};
    },
  },
];
