import type { Change } from '../diff/model.js';
import type { AnyDriver, DriverContext } from '../drivers/types.js';
import type { RunJournal } from './journal.js';

/**
 * Back up everything `change` may overwrite, before it applies: what its driver records
 * in the run journal (drivers/types.ts Restore.backup: files, and records of live state).
 * If it throws, the change has not begun: the run rolls back what applied before it.
 */
export async function backupChange(journal: RunJournal, change: Change, driver: AnyDriver, ctx: DriverContext): Promise<void> {
  await driver.restore.backup(change, journal.forChange(change.id, change.kind), ctx);
}
