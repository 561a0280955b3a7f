import type { Change } from '../../diff/model.js';
import type { Restore } from '../types.js';
import type { ObservedPackage, PackageOp } from './index.js';
import type { PackageSpec } from './spec.js';

// The undo of a package change: none. A restore (a failed run's, crash recovery's,
// `hostkit rollback`'s) keeps what apt-get installed, reported as "not undone":
// purging a package can take its data and the services built on it with it. A
// package the run purged (`remove: true`) is not installed again either.

type PackageRestoreStep = { action: 'not-reinstalled'; resource: string; package: string; unchanged: false };

export const packageRestore: Restore<Change<unknown, ObservedPackage, PackageSpec, PackageOp>, never, PackageRestoreStep> = {
  keeps: 'packages are kept installed (purging one can take its data and services with it)',

  // Nothing to record: nothing of it is put back.
  async backup() {},

  async plan(change) {
    const spec = change.planned?.entry?.spec as Partial<PackageSpec> | undefined;
    const name = spec?.name ?? change.id.replace(/^package\//, '');
    return change.begun && change.planned?.action === 'delete' ? [{ action: 'not-reinstalled', resource: change.id, package: name, unchanged: false }] : [];
  },

  async apply(step) {
    return `${step.package} was purged by the run and is not installed again`;
  },

  describe: (step) => `  keep    ${step.package} purged (a restore installs no package again)`,
};
