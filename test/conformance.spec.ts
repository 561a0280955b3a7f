import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DRIVERS } from '../reconciler/drivers/registry.js';
import { FakeHost } from '../reconciler/hosts/fake.js';
import {
  checkIdempotent,
  checkKill,
  checkObserveCost,
  checkRollback,
  checkSavedPlan,
  counted,
  coverage,
  loadFixtures,
  type ConformanceFixture,
  type Targets,
} from './support/conformance.js';

// The driver conformance kit (test/support/conformance.ts) for every registered
// driver, each on a fresh FakeHost with the fake services its fixture makes.

const fixtures = await loadFixtures();

function fakeTargets(fixture: ConformanceFixture): Targets {
  return async () => {
    const fake = new FakeHost();
    const world = fixture.fake(fake);
    const { host, processes } = counted(fake);
    return {
      where: 'fake',
      host,
      hostName: 'test-1',
      stateDirectory: '/var/lib/hostkit',
      set: 'a',
      ...(world.drivers ? { drivers: world.drivers } : {}),
      costs: () => ({ processes: processes(), ...world.costs?.() }),
      ...(world.close ? { close: world.close } : {}),
    };
  };
}

// Nothing real stands behind a wait on the fake host: waits of half a second or more (the restart
// grace a unit must stay up) pass ten times faster, so a kill at every step of an apply fits a unit test.
const realSetTimeout = globalThis.setTimeout;
function fasterTimeout(run: () => void, ms?: number) {
  return realSetTimeout(run, ms !== undefined && ms >= 500 ? ms / 10 : ms);
}

describe('test/support/conformance (every driver, on the fake host)', () => {
  beforeAll(() => void vi.stubGlobal('setTimeout', fasterTimeout));
  afterAll(() => void vi.unstubAllGlobals());

  it('every registered driver has a conformance fixture (reconciler/drivers/NAME/conformance.ts), and every fixture a driver', () => {
    expect(
      coverage(
        DRIVERS.map((d) => d.kind),
        fixtures,
      ),
    ).toEqual({ missing: [], unknown: [] });
  });

  describe.each([...fixtures.values()].map((f) => [f.kind, f] as const))('%s', (_kind, fixture) => {
    const targets = fakeTargets(fixture);
    it('apply, then a second plan is empty', () => checkIdempotent(fixture, targets));
    it('apply, then rollback: the host is as before; an update, then rollback: as before the update', () => checkRollback(fixture, targets));
    it('a kill at any step of an apply or an update, then recovery and a new apply: converged', async () => {
      const { steps, kills } = await checkKill(fixture, targets);
      expect(kills).toBe(steps);
      expect(steps).toBeGreaterThan(0);
    });
    it('observe costs as many processes for 20 resources as for one', () => checkObserveCost(fixture, targets));
    it('a saved plan is current on the unchanged host, stale after an apply, current again when saved anew', () => checkSavedPlan(fixture, targets));
  });
});
