import { beforeAll, expect, it } from 'vitest';
import { DRIVERS } from '../../reconciler/drivers/registry.js';
import {
  checkIdempotent,
  checkKill,
  checkObserveCost,
  checkRollback,
  clear,
  counted,
  coverage,
  loadFixtures,
  type ConformanceFixture,
  type Target,
  type Targets,
} from '../support/conformance.js';
import { describeHost, useHost } from './harness.js';
import { admin, CLUSTER, mapRootToPostgres } from './postgres-admin.js';
import { eventually, HOST_NAME } from './reconcile.js';

// The driver conformance kit (test/support/conformance.ts) on one booted host
// for every registered driver: real systemd, nginx, nftables and PostgreSQL.
// Each target gets names and a state directory of its own, so the checks of one
// driver never see another's resources, and what they applied is left in place
// (removing 40 units costs more than the checks), but for a kind a host has one
// of (the firewall table): the next target starts without it.

const fixtures = await loadFixtures();
// A kill at every step costs an apply each: the real host tries it for plain files at every step, for units at every tenth.
const KILLS: Partial<Record<string, number>> = { file: 1, unit: 10 };

describeHost('test/support/conformance (every driver, on a real host)', () => {
  const machine = useHost();
  let targets = 0;

  beforeAll(async () => {
    const m = machine();
    await mapRootToPostgres(m);
    await m.exec('systemctl', ['reload', CLUSTER]);
    expect(await eventually(async () => (await admin(m, 'SELECT 1').catch(() => '')) === '1', 10_000)).toBe(true);
  });

  function realTargets(fixture: ConformanceFixture): Targets {
    return async () => {
      // Names: a, b, ... z, ba, bb, ...: letters only, so "ck-SET-NAME" never collides.
      let n = targets++;
      let set = '';
      do {
        set = String.fromCharCode(97 + (n % 26)) + set;
        n = Math.floor(n / 26);
      } while (n > 0);
      const { host, processes } = counted(machine().host);
      const target: Target = {
        where: 'real',
        host,
        hostName: HOST_NAME,
        stateDirectory: `/var/lib/hostkit-ck-${set}`,
        set,
        costs: () => ({ processes: processes() }),
        ...(fixture.single ? { close: () => clear(fixture, target) } : {}),
      };
      return target;
    };
  }

  it('every registered driver has a conformance fixture', () => {
    expect(
      coverage(
        DRIVERS.map((d) => d.kind),
        fixtures,
      ),
    ).toEqual({ missing: [], unknown: [] });
  });

  for (const fixture of fixtures.values()) {
    const real = realTargets(fixture);
    it(`${fixture.kind}: apply, then a second plan is empty`, () => checkIdempotent(fixture, real));
    it(`${fixture.kind}: apply, then rollback: as before; an update, then rollback: as before the update`, () => checkRollback(fixture, real));
    it(`${fixture.kind}: observe costs as many processes for 20 resources as for one`, () => checkObserveCost(fixture, real));
    const every = KILLS[fixture.kind];
    if (every !== undefined) {
      it(`${fixture.kind}: a kill at ${every === 1 ? 'every' : `every ${every}th`} step of an apply or an update, then recovery: converged`, async () => {
        const { kills } = await checkKill(fixture, real, { every });
        expect(kills).toBeGreaterThan(0);
      });
    }
  }
});
