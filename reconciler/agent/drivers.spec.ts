import { describe, expect, it } from 'vitest';
import type { ConfirmInput } from '../drivers/nftables/index.js';
import type { DriverContext } from '../drivers/types.js';
import { agentDrivers, remoteConfirm } from './drivers.js';

const ctx = {} as DriverContext;
const input = {} as ConfirmInput;

describe('reconciler/agent/drivers', () => {
  it.each([
    [true, [], []],
    [false, [], ['the git remote git@example.com:acme/config.git does not answer with the new rules']],
    [true, ['table inet hostkit is missing'], ['table inet hostkit is missing']],
  ])('remote reachable %s, base problems %j -> %j', async (reachable, base, expected) => {
    const check = remoteConfirm(
      async () => [...base],
      async () => reachable,
      'git@example.com:acme/config.git',
    );
    expect(await check(ctx, input)).toEqual(expected);
  });

  it('replaces only the firewall driver', () => {
    const map = agentDrivers(async () => true, 'x');
    expect(map.get('firewall')?.kind).toBe('firewall');
    expect(map.has('unit')).toBe(true);
  });
});
