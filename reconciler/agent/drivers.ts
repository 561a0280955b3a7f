import type { ResourceKind } from '../core/resource.js';
import { confirmFirewall, createNftablesDriver } from '../drivers/nftables/index.js';
import { drivers as defaultDrivers } from '../drivers/registry.js';
import type { AnyDriver } from '../drivers/types.js';

// The agent's drivers: the registry's, with a firewall change confirmed only
// if, besides the default checks, the git remote still answers: a rule that
// cut the agent off from its repository is reverted by the armed timer.
export function agentDrivers(remoteReachable: () => Promise<boolean>, url: string): ReadonlyMap<ResourceKind, AnyDriver> {
  const map = new Map<ResourceKind, AnyDriver>(defaultDrivers);
  map.set(
    'firewall',
    createNftablesDriver({
      confirm: async (ctx, input) => {
        const problems = await confirmFirewall(ctx, input);
        if (!(await remoteReachable())) problems.push(`the git remote ${url} does not answer with the new rules`);
        return problems;
      },
    }) as AnyDriver,
  );
  return map;
}
