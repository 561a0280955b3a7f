import { describe, expect, it } from 'vitest';
import { parseRollout, type RolloutPolicy } from './policy.js';
import { allowedFailures, assignWaves, type FleetHost } from './waves.js';

const hosts: FleetHost[] = [
  ...['web-1', 'web-2', 'web-3', 'web-4', 'web-5', 'web-6', 'web-7', 'web-8'].map((name) => ({ name, labels: { env: 'prod' } })),
  { name: 'canary', labels: { env: 'prod' } },
  { name: 'dev-1', labels: { env: 'dev' } },
];

async function policy(yaml: string): Promise<RolloutPolicy> {
  const r = await parseRollout('.hostkit/rollout.yaml', Buffer.from(yaml));
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
  return r.policy;
}

const CANARY_THEN_PROD = `apiVersion: hostkit.dev/v1
kind: Rollout
metadata: { name: default }
spec:
  waves:
    - { name: canary, hosts: [canary], bake: 10m }
    - { name: prod, selector: { matchLabels: { env: prod } }, batch: 25%, maxFailures: 10% }
`;

describe('reconciler/fleet/waves', () => {
  it('puts a host in the first wave that chooses it, batches in name order, and leaves the rest out', async () => {
    const { slots, members } = assignWaves(await policy(CANARY_THEN_PROD), hosts);
    expect(members.get(1)).toEqual(['canary']);
    expect(members.get(2)).toEqual(['web-1', 'web-2', 'web-3', 'web-4', 'web-5', 'web-6', 'web-7', 'web-8']);
    expect(slots.get('canary')).toMatchObject({ batch: 1, step: 1 });
    expect([...['web-1', 'web-2', 'web-3', 'web-8']].map((n) => [slots.get(n)!.batch, slots.get(n)!.step])).toEqual([
      [1, 2],
      [1, 2],
      [2, 3],
      [4, 5],
    ]);
    expect(slots.has('dev-1')).toBe(false);
    expect(slots.get('canary')!.wave.bakeMs).toBe(600_000);
  });

  it.each([
    [{ count: 2 }, 8, 2],
    [{ percent: 10 }, 8, 0],
    [{ percent: 10 }, 20, 2],
    [{ percent: 25 }, 9, 2],
  ])('allows %j failures of %i hosts: %i', (amount, size, expected) => {
    expect(allowedFailures(amount, size)).toBe(expected);
  });

  it('refuses a wave that chooses no hosts, naming the field', async () => {
    const r = await parseRollout(
      '.hostkit/rollout.yaml',
      Buffer.from('apiVersion: hostkit.dev/v1\nkind: Rollout\nmetadata: { name: x }\nspec:\n  waves:\n    - { name: a, bake: 5m }\n'),
    );
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.diagnostics.map((d) => d.location?.pointer)).toContain('/spec/waves/0');
  });

  it('refuses a batch that is not a percentage', async () => {
    const r = await parseRollout(
      '.hostkit/rollout.yaml',
      Buffer.from('apiVersion: hostkit.dev/v1\nkind: Rollout\nmetadata: { name: x }\nspec:\n  waves:\n    - { hosts: [a], batch: "0%" }\n'),
    );
    expect(r.ok).toBe(false);
  });
});
