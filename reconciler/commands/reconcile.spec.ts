import { describe, expect, it } from 'vitest';
import { rolledBackCount } from './reconcile.js';

describe('reconciler/commands/reconcile rolledBackCount', () => {
  const plan = { changes: [{ id: 'file/srv/shop/app.py' }, { id: 'unit/hk-shop.service' }] };

  it('counts the failed step when it was a change of the plan', () => {
    expect(rolledBackCount({ steps: [{}], failed: { id: 'unit/hk-shop.service' } }, plan)).toBe(2);
  });

  it('does not count a failed health check, settle or bookkeeping step: only the changes applied', () => {
    for (const id of ['health/shop', 'unit', '(run)']) expect(rolledBackCount({ steps: [{}, {}], failed: { id } }, plan)).toBe(2);
  });
});
