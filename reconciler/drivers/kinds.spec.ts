import { describe, expect, it } from 'vitest';
import { KINDS, PROJECT_PARTS } from './kinds.js';
import { DRIVERS } from './registry.js';

describe('drivers/kinds (the light registry)', () => {
  it('pairs every kind with its driver, in one order, the driver carrying its definition', () => {
    expect(DRIVERS.map((d) => d.kind)).toEqual(KINDS.map((k) => k.kind));
    KINDS.forEach((k, i) => {
      const driver = DRIVERS[i]!;
      expect({ rank: driver.rank, orphans: driver.orphans, manifests: driver.manifests }).toEqual({
        rank: k.rank,
        orphans: k.orphans,
        manifests: 'manifests' in k ? k.manifests : undefined,
      });
    });
  });

  it('expands a Project in one declared order, each part once; what a part adds, the parts after it start after', () => {
    expect(PROJECT_PARTS.map((p) => p.name)).toEqual([
      'account',
      'directory',
      'files',
      'env file',
      'database',
      'release',
      'lifecycle commands',
      'units',
      'after-start commands',
      'domains',
      'backups',
    ]);
  });
});
