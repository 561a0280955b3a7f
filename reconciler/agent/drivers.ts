import type { ResourceKind } from '../core/resource.js';
import { confirmFirewall, createNftablesDriver, type ConfirmCheck } from '../drivers/nftables/index.js';
import { drivers as defaultDrivers } from '../drivers/registry.js';
import type { AnyDriver } from '../drivers/types.js';

/** A firewall confirm check that also needs the git remote to answer with the new rules live. */
export function remoteConfirm(base: ConfirmCheck, remoteReachable: () => Promise<boolean>, url: string): ConfirmCheck {
  return async (ctx, input) => {
    const problems = await base(ctx, input);
    if (!(await remoteReachable())) problems.push(`the git remote ${url} does not answer with the new rules`);
    return problems;
  };
}

// The agent's drivers: the registry's, with a firewall change confirmed only
// if, besides the default checks, the git remote still answers: a rule that
// cut the agent off from its repository is reverted by the armed timer.
export function agentDrivers(remoteReachable: () => Promise<boolean>, url: string): ReadonlyMap<ResourceKind, AnyDriver> {
  const map = new Map<ResourceKind, AnyDriver>(defaultDrivers);
  map.set('firewall', createNftablesDriver({ confirm: remoteConfirm(confirmFirewall, remoteReachable, url) }) as AnyDriver);
  return map;
}
