import { FakeFirewall } from '../../../test/support/fake-nft.js';
import type { ConformanceFixture } from '../../../test/support/conformance.js';
import type { FirewallSpec } from '../../core/specs.js';
import type { Driver } from '../types.js';
import { BOOT_LINK, BOOT_UNIT_PATH, bootPath } from './boot.js';
import { nftablesDriver, type DesiredFirewall, type FirewallUndo, type ObservedFirewall } from './index.js';

type FirewallDriver = Driver<FirewallSpec, DesiredFirewall, ObservedFirewall, FirewallUndo, 'firewall'>;

// The fake kernel reads back only tables it was shown (FakeFirewall.know): the driver, unchanged, shows it each table it renders.
function shownToKernel(kernel: FakeFirewall): FirewallDriver {
  return {
    ...nftablesDriver,
    async desire(...args: Parameters<FirewallDriver['desire']>) {
      const wanted = await nftablesDriver.desire(...args);
      for (const { desired } of wanted.values()) kernel.know(desired.table);
      return wanted;
    },
  };
}

// The host's one table: the openings of a FirewallRules manifest, `count` of them, policy drop.
export const fixtures: ConformanceFixture[] = [
  {
    kind: 'firewall',
    host: { firewall: { input: 'drop', confirmTimeout: '60s' } },
    declare: (set, count, changed) => [
      {
        kind: 'FirewallRules',
        name: `ck-${set}-fw`,
        spec: { openings: Array.from({ length: count }, (_, i) => ({ port: changed && i === 0 ? 9300 : 9200 + i + 1, protocol: 'tcp' })) },
      },
    ],
    paths: ({ stateDirectory }) => [bootPath(stateDirectory), BOOT_UNIT_PATH, BOOT_LINK],
    single: { reason: 'README, nftables: a host whose manifest has spec.firewall gets one table, inet hostkit; its openings are what `count` sizes' },
    fake: (host) => {
      const kernel = new FakeFirewall(host);
      return { drivers: () => [shownToKernel(kernel)] };
    },
  },
];
